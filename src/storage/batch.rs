//! The v2 record batch header (magic 2), read and checked without touching record data.
//!
//! Batches are stored exactly as the producer sent them; the broker only ever sets
//! `baseOffset` and `partitionLeaderEpoch`, which lie outside the CRC. This module knows the
//! 61-byte header layout, verifies the CRC-32C, and walks the records of an uncompressed
//! batch to check their framing (no copy, no decompression).

use bytes::Buf;

pub const HEADER_LEN: usize = 61;
/// baseOffset (8) + batchLength (4): the part of the header before the length-counted bytes.
pub const LOG_OVERHEAD: usize = 12;

pub const OFF_BASE_OFFSET: usize = 0;
pub const OFF_LENGTH: usize = 8;
pub const OFF_LEADER_EPOCH: usize = 12;
pub const OFF_MAGIC: usize = 16;
pub const OFF_CRC: usize = 17;
pub const OFF_ATTRIBUTES: usize = 21;
pub const OFF_LAST_OFFSET_DELTA: usize = 23;
pub const OFF_BASE_TIMESTAMP: usize = 27;
pub const OFF_MAX_TIMESTAMP: usize = 35;
pub const OFF_PRODUCER_ID: usize = 43;
pub const OFF_RECORD_COUNT: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused; mapped to Kafka error codes by the produce handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated or its length field is inconsistent")]
    Corrupt,
    #[error("record batch CRC does not match its contents")]
    CrcMismatch,
    #[error("record batch magic {0} is not supported; only magic 2 is")]
    UnsupportedMagic(i8),
    #[error("record batch is invalid: {0}")]
    Invalid(&'static str),
    #[error("record batch of {0} bytes exceeds the maximum size")]
    TooLarge(usize),
}

/// The header fields of one batch, read from its first 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The whole batch size in bytes, including the 12-byte log overhead.
    pub size: usize,
    /// The epoch of the leader that appended it (-1 as a producer sends it).
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses a header from at least `HEADER_LEN` bytes; checks only that lengths are sane.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Corrupt);
        }
        let mut b = buf;
        let base_offset = b.get_i64();
        let length = b.get_i32();
        let partition_leader_epoch = b.get_i32();
        let magic = b.get_i8();
        if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt);
        }
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let crc = b.get_u32();
        let attributes = b.get_i16();
        let last_offset_delta = b.get_i32();
        let base_timestamp = b.get_i64();
        let max_timestamp = b.get_i64();
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let base_sequence = b.get_i32();
        let record_count = b.get_i32();
        Ok(BatchHeader {
            base_offset,
            size: length as usize + LOG_OVERHEAD,
            partition_leader_epoch,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Written by an idempotent (or transactional) producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the batch's last record (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// CRC-32C of a batch's checked region (attributes to the end).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[OFF_ATTRIBUTES..])
}

/// Reads a zig-zag varint (as records use); `None` when the buffer ends or it overflows.
pub fn read_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// One record's position and timestamp inside an uncompressed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset_delta: i64,
    pub timestamp_delta: i64,
    /// The record's key is not null.
    pub has_key: bool,
}

/// Walks the records of an uncompressed batch body (the bytes after the 61-byte header),
/// checking each record's length framing. Returns the records' offset and timestamp deltas.
pub fn walk_records(mut body: &[u8], count: i32, mut visit: impl FnMut(RecordInfo)) -> Result<(), BatchError> {
    for _ in 0..count {
        let len = read_varint(&mut body).ok_or(BatchError::Invalid("record length is truncated"))?;
        if len < 0 || len as usize > body.len() {
            return Err(BatchError::Invalid("record length runs past the batch"));
        }
        let (mut record, rest) = body.split_at(len as usize);
        body = rest;
        if record.is_empty() {
            return Err(BatchError::Invalid("empty record"));
        }
        record = &record[1..]; // attributes (int8)
        let timestamp_delta = read_varint(&mut record).ok_or(BatchError::Invalid("record timestamp is truncated"))?;
        let offset_delta = read_varint(&mut record).ok_or(BatchError::Invalid("record offset is truncated"))?;
        let key_len = read_varint(&mut record).ok_or(BatchError::Invalid("record key length is truncated"))?;
        visit(RecordInfo { offset_delta, timestamp_delta, has_key: key_len >= 0 });
    }
    if !body.is_empty() {
        return Err(BatchError::Invalid("bytes left after the last record"));
    }
    Ok(())
}

/// Whether every record of the batch has a key (compacted topics refuse keyless records,
/// as Kafka's LogValidator does). Compressed batches are decompressed to look.
pub fn all_records_keyed(batch: &[u8], h: &BatchHeader) -> Result<bool, BatchError> {
    if h.compression() == 0 {
        let mut keyed = true;
        walk_records(&batch[HEADER_LEN..], h.record_count, |r| keyed &= r.has_key)?;
        return Ok(keyed);
    }
    let mut bytes = bytes::Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
        .map_err(|_| BatchError::Invalid("the compressed records cannot be read"))?;
    Ok(set.records.iter().all(|r| r.key.is_some()))
}

/// Validates one batch as a producer sent it, as Kafka's LogValidator does for magic 2.
/// `max_size` is the topic's `max.message.bytes`.
pub fn validate_produced(batch: &[u8], max_size: usize) -> Result<BatchHeader, BatchError> {
    let mut h = BatchHeader::parse(batch)?;
    if h.size != batch.len() {
        return Err(BatchError::Corrupt);
    }
    if h.size > max_size {
        return Err(BatchError::TooLarge(h.size));
    }
    if compute_crc(batch) != h.crc {
        return Err(BatchError::CrcMismatch);
    }
    if h.is_control() {
        return Err(BatchError::Invalid("clients may not write control batches"));
    }
    if h.record_count <= 0 {
        return Err(BatchError::Invalid("batch has no records"));
    }
    if h.last_offset_delta < 0 || h.last_offset_delta as i64 + 1 != h.record_count as i64 {
        return Err(BatchError::Invalid("record count does not match the batch's offset range"));
    }
    if h.compression() > 4 {
        return Err(BatchError::Invalid("unknown compression codec"));
    }
    // The header's max timestamp becomes the records' largest, as Kafka's LogValidator
    // sets it (some producers send -1); the log rewrites it when it differs.
    if h.compression() == 0 {
        let mut expected = 0i64;
        let mut in_order = true;
        let mut max_delta = i64::MIN;
        walk_records(&batch[HEADER_LEN..], h.record_count, |r| {
            in_order &= r.offset_delta == expected;
            expected += 1;
            max_delta = max_delta.max(r.timestamp_delta);
        })?;
        if !in_order {
            return Err(BatchError::Invalid("record offset deltas are not consecutive"));
        }
        h.max_timestamp = h.base_timestamp.saturating_add(max_delta);
    } else if h.max_timestamp < h.base_timestamp {
        let mut bytes = bytes::Bytes::copy_from_slice(batch);
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
            .map_err(|_| BatchError::Invalid("the compressed records cannot be read"))?;
        h.max_timestamp = set.records.iter().map(|r| r.timestamp).max().unwrap_or(h.max_timestamp);
    }
    Ok(h)
}

/// Splits a produce request's records into batches, bounded by the buffer (never by a
/// length read from it). A trailing partial batch is an error.
pub fn split_batches(mut records: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let mut out = Vec::new();
    while !records.is_empty() {
        if records.len() < HEADER_LEN {
            return Err(BatchError::Corrupt);
        }
        let length = (&records[OFF_LENGTH..OFF_LENGTH + 4]).get_i32();
        if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt);
        }
        let size = length as usize + LOG_OVERHEAD;
        if size > records.len() {
            return Err(BatchError::Corrupt);
        }
        let (batch, rest) = records.split_at(size);
        out.push(batch);
        records = rest;
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Control record types (the key's second field).
pub const CONTROL_ABORT: i16 = 0;
pub const CONTROL_COMMIT: i16 = 1;

/// A transaction marker as Kafka writes it: a control batch of one record whose key is
/// (version 0, type) and whose value is (version 0, coordinator epoch). Its base offset is
/// stamped at append.
pub fn control_batch(producer_id: i64, producer_epoch: i16, commit: bool, coordinator_epoch: i32, ts: i64) -> Vec<u8> {
    let kind = if commit { CONTROL_COMMIT } else { CONTROL_ABORT };
    let mut r = Vec::with_capacity(24);
    r.push(0u8); // record attributes
    put_varint(&mut r, 0); // timestamp delta
    put_varint(&mut r, 0); // offset delta
    put_varint(&mut r, 4);
    r.extend_from_slice(&0i16.to_be_bytes());
    r.extend_from_slice(&kind.to_be_bytes());
    put_varint(&mut r, 6);
    r.extend_from_slice(&0i16.to_be_bytes());
    r.extend_from_slice(&coordinator_epoch.to_be_bytes());
    put_varint(&mut r, 0); // headers
    let mut records = Vec::with_capacity(r.len() + 2);
    put_varint(&mut records, r.len() as i64);
    records.extend_from_slice(&r);
    let mut b = Vec::with_capacity(HEADER_LEN + records.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch, stamped at append
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc below
    b.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&records);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The type of a control batch's record (commit or abort), from the bytes after its header.
pub fn control_type(body: &[u8]) -> Option<i16> {
    let mut b = body;
    read_varint(&mut b)?; // record length
    let (_, rest) = b.split_first()?; // attributes
    b = rest;
    read_varint(&mut b)?; // timestamp delta
    read_varint(&mut b)?; // offset delta
    let key_len = read_varint(&mut b)?;
    if key_len < 4 || b.len() < 4 {
        return None;
    }
    Some(i16::from_be_bytes([b[2], b[3]]))
}

#[cfg(test)]
pub mod test_support {
    //! Builds valid uncompressed batches for unit tests of the storage layer.
    use super::*;
    use bytes::BufMut;

    /// A batch of `values` (no keys, no headers) with timestamps `ts, ts+1, ...`.
    pub fn batch(values: &[&[u8]], ts: i64) -> Vec<u8> {
        let mut records = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let mut r = Vec::new();
            r.push(0u8);
            put_varint(&mut r, i as i64);
            put_varint(&mut r, i as i64);
            put_varint(&mut r, -1);
            put_varint(&mut r, v.len() as i64);
            r.extend_from_slice(v);
            put_varint(&mut r, 0);
            put_varint(&mut records, r.len() as i64);
            records.extend_from_slice(&r);
        }
        let mut b = Vec::new();
        b.put_i64(0);
        b.put_i32((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32);
        b.put_i32(-1);
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(0);
        b.put_i32(values.len() as i32 - 1);
        b.put_i64(ts);
        b.put_i64(ts + values.len() as i64 - 1);
        b.put_i64(-1);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i32(values.len() as i32);
        b.extend_from_slice(&records);
        let crc = compute_crc(&b);
        b[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::batch;
    use super::*;

    #[test]
    fn valid_batch_passes_and_flipped_bit_fails() {
        let mut b = batch(&[b"a", b"bc", b"def"], 1000);
        let h = validate_produced(&b, 1 << 20).unwrap();
        assert_eq!((h.record_count, h.last_offset_delta, h.max_timestamp), (3, 2, 1002));
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(validate_produced(&b, 1 << 20), Err(BatchError::CrcMismatch));
    }

    #[test]
    fn size_limits_and_truncation() {
        let b = batch(&[b"0123456789"], 0);
        assert!(matches!(validate_produced(&b, 20), Err(BatchError::TooLarge(_))));
        assert_eq!(split_batches(&b[..b.len() - 1]), Err(BatchError::Corrupt));
        let two = [b.clone(), b.clone()].concat();
        assert_eq!(split_batches(&two).unwrap().len(), 2);
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut b = batch(&[b"x"], 0);
        b[OFF_MAGIC] = 1;
        assert_eq!(validate_produced(&b, 1 << 20), Err(BatchError::UnsupportedMagic(1)));
    }

    #[test]
    fn count_mismatch_is_invalid() {
        let mut b = batch(&[b"x", b"y"], 0);
        b[OFF_RECORD_COUNT..OFF_RECORD_COUNT + 4].copy_from_slice(&3i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate_produced(&b, 1 << 20), Err(BatchError::Invalid(_))));
    }
}
