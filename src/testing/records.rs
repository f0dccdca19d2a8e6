//! Record batches built the way a producer without idempotence builds them, for unit
//! tests, integration tests and benchmarks (which are separate crates and would
//! otherwise each spell out kafka-protocol's `Record`).

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// One plain record (no producer id, creation time) at offset delta `offset`. Its
/// sequence is `offset - 1`, the consecutive run kafka-protocol's encoder keeps in one
/// batch, whose base sequence (-1) then means "none".
pub fn record(offset: i64, timestamp: i64, key: Option<Bytes>, value: Option<Bytes>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32 - 1,
        timestamp,
        key,
        value,
        headers: IndexMap::new(),
    }
}

/// The records encoded as magic-2 batches (one batch when they come from `record` with
/// offsets 0, 1, 2, …).
pub fn batch(records: &[Record], compression: Compression) -> BytesMut {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records.iter(), &RecordEncodeOptions { version: 2, compression }).expect("records encode");
    buf
}
