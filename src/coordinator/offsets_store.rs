//! Where the group coordinator keeps what it must not forget: the internal compacted
//! topic `__consumer_offsets`. A group lives in partition `abs(hashCode(groupId)) % n` as
//! in Kafka. The topic is created on the first write (as Kafka creates it on first use)
//! and read back in full when the broker starts.
//!
//! `OffsetsStore` is the narrow interface the coordinator writes through; the unit tests
//! plug in a store that only remembers.

use super::records::{self, OffsetsRecord};
use crate::storage::batch::{validate_produced, BatchHeader, HEADER_LEN};
use crate::storage::{LogManager, Partition};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A key and a value (None: a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// An append that is in the log and may still need an fsync (per the flush settings).
#[must_use]
pub struct Durable(Option<(Arc<Partition>, i64)>);

impl Durable {
    pub fn done() -> Self {
        Durable(None)
    }

    pub async fn wait(self) -> io::Result<()> {
        match self.0 {
            Some((p, upto)) => p.flush_to(upto).await,
            None => Ok(()),
        }
    }
}

pub trait OffsetsStore: Send + Sync + 'static {
    /// Appends the records, in order, as one batch. Must not block on I/O beyond a write
    /// into the page cache: the coordinator calls it under its lock.
    fn append(&self, partition: i32, records: &[KeyValue], now_ms: i64) -> io::Result<Durable>;
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`, Java's UTF-16 `String.hashCode`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Encodes records as one uncompressed batch (magic 2) with offsets from 0.
pub fn encode_batch(records: &[KeyValue], now_ms: i64) -> io::Result<BytesMut> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: crate::LEADER_EPOCH,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever `offset - sequence` changes; with
            // this the batch's base sequence is -1 (no producer) and all records share it.
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(k.clone()),
            value: v.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &recs, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .map_err(io::Error::other)?;
    Ok(buf)
}

/// The store on the broker's own log.
pub struct LogOffsetsStore {
    logs: Arc<LogManager>,
    partitions: i32,
    overrides: BTreeMap<String, String>,
    create: Mutex<()>,
}

impl LogOffsetsStore {
    pub fn new(logs: Arc<LogManager>, partitions: i32, segment_bytes: i64) -> Self {
        let overrides = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), segment_bytes.to_string()),
            ("compression.type".to_string(), "producer".to_string()),
        ]);
        LogOffsetsStore { logs, partitions, overrides, create: Mutex::new(()) }
    }

    fn partition(&self, p: i32) -> io::Result<Arc<Partition>> {
        if let Some(part) = self.logs.partition(OFFSETS_TOPIC, p) {
            return Ok(part);
        }
        let _once = self.create.lock().unwrap();
        if self.logs.topic(OFFSETS_TOPIC).is_none() {
            self.logs
                .create_topic(OFFSETS_TOPIC, self.partitions, self.overrides.clone(), false)
                .map_err(|e| io::Error::other(format!("cannot create {OFFSETS_TOPIC}: {e}")))?;
        }
        self.logs.partition(OFFSETS_TOPIC, p).ok_or_else(|| {
            io::Error::other(format!(
                "{OFFSETS_TOPIC} has no partition {p}; offsets.topic.num.partitions must not change once the topic exists"
            ))
        })
    }

    /// Reads every record of `__consumer_offsets`, partition by partition, in log order.
    pub fn load(&self, mut visit: impl FnMut(OffsetsRecord)) -> io::Result<usize> {
        let Some(topic) = self.logs.topic(OFFSETS_TOPIC) else { return Ok(0) };
        let mut count = 0;
        for part in &topic.partitions {
            let mut offset = part.offsets().log_start;
            loop {
                let slice = match part.read(offset, 1 << 20, true) {
                    Ok((Some(s), _)) => s,
                    Ok((None, _)) => break,
                    Err(e) => return Err(io::Error::other(format!("reading {OFFSETS_TOPIC}-{}: {e:?}", part.index))),
                };
                let mut buf = vec![0u8; slice.len as usize];
                slice.file.read_exact_at(&mut buf, slice.position)?;
                let mut rest = &buf[..];
                let before = offset;
                while rest.len() >= HEADER_LEN {
                    let Ok(h) = BatchHeader::parse(rest) else { break };
                    if h.size > rest.len() {
                        break;
                    }
                    let mut one = Bytes::copy_from_slice(&rest[..h.size]);
                    rest = &rest[h.size..];
                    offset = h.last_offset() + 1;
                    if h.is_control() {
                        continue;
                    }
                    match RecordBatchDecoder::decode(&mut one) {
                        Ok(set) => {
                            for r in set.records {
                                let Some(key) = r.key else { continue };
                                match records::decode(&key, r.value.as_deref()) {
                                    Some(rec) => {
                                        visit(rec);
                                        count += 1;
                                    }
                                    None => tracing::warn!(partition = part.index, offset = r.offset, "skipping a malformed {OFFSETS_TOPIC} record"),
                                }
                            }
                        }
                        Err(e) => tracing::warn!(partition = part.index, error = %e, "skipping an undecodable {OFFSETS_TOPIC} batch"),
                    }
                }
                if offset == before {
                    break; // nothing whole was read: the end of what is there
                }
            }
        }
        Ok(count)
    }
}

impl OffsetsStore for LogOffsetsStore {
    fn append(&self, partition: i32, records: &[KeyValue], now_ms: i64) -> io::Result<Durable> {
        if records.is_empty() {
            return Ok(Durable::done());
        }
        let part = self.partition(partition)?;
        let batch = encode_batch(records, now_ms)?;
        let header = validate_produced(&batch, usize::MAX)
            .map_err(|e| io::Error::other(format!("internal batch rejected: {e}")))?;
        let (info, flush_due) = part.append(&[(&batch[..], header)]).map_err(|e| match e {
            crate::storage::log::AppendError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(Durable(flush_due.then(|| (part, info.last_offset + 1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_into_one_valid_batch() {
        let recs: Vec<KeyValue> = (0..5).map(|i| (Bytes::from(format!("k{i}")), Some(Bytes::from_static(b"v")))).collect();
        let batch = encode_batch(&recs, 1234).unwrap();
        let h = validate_produced(&batch, usize::MAX).expect("one whole batch");
        assert_eq!((h.record_count, h.producer_id), (5, -1));
    }

    #[test]
    fn partitions_match_kafkas_hash() {
        // Java: Math.abs("my-group".hashCode()) % 50 etc.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        let h = "my-group".encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32));
        assert_eq!(partition_for("my-group", 50), h.abs() % 50);
        assert!((0..50).contains(&partition_for("ünïcode-group", 50)));
    }
}
