//! The internal compacted topics the coordinators keep their state in
//! (`__consumer_offsets`, `__transaction_state`): created on the first write, as Kafka
//! creates them on first use, written as small key/value batches, and read back in full
//! when the broker starts.
//!
//! Writes of a transaction (TxnOffsetCommit) are transactional batches of the producer;
//! the scan reports them with their producer id and reports the commit/abort markers,
//! so the reader can hold them back until the marker, as Kafka's loaders do.

use crate::storage::batch::{self, validate_produced, BatchHeader, HEADER_LEN};
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

/// A key and a value (None: a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// The producer a transactional write belongs to: (producer id, epoch).
pub type TxnProducer = (i64, i16);

/// An append that is in the log and may still need an fsync (per the flush settings), or
/// work to start once the appends before it are durable.
#[must_use]
pub struct Durable(Step);

enum Step {
    Done,
    Flush(Arc<Partition>, i64),
    Then(futures::future::BoxFuture<'static, ()>),
}

impl Durable {
    pub fn done() -> Self {
        Durable(Step::Done)
    }

    pub fn pending(partition: Arc<Partition>, upto: i64) -> Self {
        Durable(Step::Flush(partition, upto))
    }

    /// `work` is spawned when this step is reached: after every earlier step of the same
    /// operation is durable, without waiting for it.
    pub fn then_spawn(work: futures::future::BoxFuture<'static, ()>) -> Self {
        Durable(Step::Then(work))
    }

    pub async fn wait(self) -> io::Result<()> {
        match self.0 {
            Step::Flush(p, upto) => p.flush_to(upto).await,
            Step::Done => Ok(()),
            Step::Then(work) => {
                tokio::spawn(work);
                Ok(())
            }
        }
    }
}

/// What a scan finds, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A record; `txn` names the producer when it was written inside a transaction.
    Record { txn: Option<i64>, key: Bytes, value: Option<Bytes> },
    /// The end of producer `producer_id`'s transaction in this partition.
    Marker { producer_id: i64, commit: bool },
}

/// Kafka's `Utils.abs(key.hashCode()) % partitions`, Java's UTF-16 `String.hashCode`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Encodes records as one uncompressed batch (magic 2) with offsets from 0, transactional
/// when `txn` is given (base sequence -1: a coordinator's write, not checked for order).
pub fn encode_batch(records: &[KeyValue], txn: Option<TxnProducer>, now_ms: i64) -> io::Result<BytesMut> {
    let (producer_id, producer_epoch) = txn.unwrap_or((-1, -1));
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: txn.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: crate::LEADER_EPOCH,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever `offset - sequence` changes; with
            // this the batch's base sequence is -1 (no sequence) and all records share it.
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

/// The configs of an internal topic: compacted, the broker's segment size for it, batches
/// kept as the coordinator wrote them.
pub fn internal_topic_configs(segment_bytes: i64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
        ("compression.type".to_string(), "producer".to_string()),
    ])
}

pub struct InternalTopic {
    logs: Arc<LogManager>,
    name: &'static str,
    partitions: i32,
    partitions_key: &'static str,
    overrides: BTreeMap<String, String>,
    create: Mutex<()>,
}

impl InternalTopic {
    /// `partitions_key` names the setting that chose the partition count (for errors).
    pub fn new(logs: Arc<LogManager>, name: &'static str, partitions: i32, partitions_key: &'static str, segment_bytes: i64) -> Self {
        let overrides = internal_topic_configs(segment_bytes);
        InternalTopic { logs, name, partitions, partitions_key, overrides, create: Mutex::new(()) }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions
    }

    /// The partition, creating the topic on first use on a lone node (on a node of several
    /// the controller creates it, when FindCoordinator first looks for it).
    pub fn partition(&self, p: i32) -> io::Result<Arc<Partition>> {
        if let Some(part) = self.logs.partition(self.name, p) {
            return Ok(part);
        }
        if !self.logs.broker_config().cluster.is_lone() {
            return Err(io::Error::other(format!("{}-{p} is not on this broker yet", self.name)));
        }
        let _once = self.create.lock().unwrap_or_else(|e| e.into_inner());
        if self.logs.topic(self.name).is_none() {
            self.logs
                .create_topic(self.name, self.partitions, self.overrides.clone(), false)
                .map_err(|e| io::Error::other(format!("cannot create {}: {e}", self.name)))?;
        }
        self.logs.partition(self.name, p).ok_or_else(|| {
            io::Error::other(format!("{} has no partition {p}; {} must not change once the topic exists", self.name, self.partitions_key))
        })
    }

    /// Appends the records, in order, as one batch (a page-cache write; the returned
    /// `Durable` waits for the fsync the flush settings ask for).
    pub fn append(&self, partition: i32, records: &[KeyValue], txn: Option<TxnProducer>, now_ms: i64) -> io::Result<Durable> {
        if records.is_empty() {
            return Ok(Durable::done());
        }
        let part = self.partition(partition)?;
        let batch = encode_batch(records, txn, now_ms)?;
        let header = validate_produced(&batch, usize::MAX).map_err(|e| io::Error::other(format!("internal batch rejected: {e}")))?;
        let (info, flush_due) = part.append(&[(&batch[..], header)]).map_err(|e| match e {
            crate::storage::log::AppendError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(if flush_due { Durable::pending(part, info.last_offset + 1) } else { Durable::done() })
    }

    /// Reads every record and marker, partition by partition, in log order.
    pub fn scan(&self, mut visit: impl FnMut(i32, Entry)) -> io::Result<usize> {
        let Some(topic) = self.logs.topic(self.name) else { return Ok(0) };
        let mut count = 0;
        for part in &topic.partitions {
            let mut offset = part.offsets().log_start;
            loop {
                let slice = match part.read(offset, 1 << 20, true) {
                    Ok((Some(s), _)) => s,
                    Ok((None, _)) => break,
                    Err(e) => return Err(io::Error::other(format!("reading {}-{}: {e:?}", self.name, part.index))),
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
                    let (this, tail) = rest.split_at(h.size);
                    rest = tail;
                    offset = h.last_offset() + 1;
                    count += self.visit_batch(part.index, &h, this, &mut visit);
                }
                if offset == before {
                    break; // nothing whole was read: the end of what is there
                }
            }
        }
        Ok(count)
    }

    fn visit_batch(&self, partition: i32, h: &BatchHeader, bytes: &[u8], visit: &mut impl FnMut(i32, Entry)) -> usize {
        if h.is_control() {
            if let Some(kind) = batch::control_type(&bytes[HEADER_LEN..]) {
                visit(partition, Entry::Marker { producer_id: h.producer_id, commit: kind == batch::CONTROL_COMMIT });
            }
            return 0;
        }
        let txn = h.is_transactional().then_some(h.producer_id);
        let mut one = Bytes::copy_from_slice(bytes);
        match RecordBatchDecoder::decode(&mut one) {
            Ok(set) => {
                let mut n = 0;
                for r in set.records {
                    let Some(key) = r.key else { continue };
                    visit(partition, Entry::Record { txn, key, value: r.value });
                    n += 1;
                }
                n
            }
            Err(e) => {
                tracing::warn!(topic = self.name, partition, error = %e, "skipping an undecodable batch");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_into_one_valid_batch() {
        let recs: Vec<KeyValue> = (0..5).map(|i| (Bytes::from(format!("k{i}")), Some(Bytes::from_static(b"v")))).collect();
        let batch = encode_batch(&recs, None, 1234).unwrap();
        let h = validate_produced(&batch, usize::MAX).expect("one whole batch");
        assert_eq!((h.record_count, h.producer_id, h.is_transactional()), (5, -1, false));
        let txn = encode_batch(&recs, Some((7, 2)), 1234).unwrap();
        let h = validate_produced(&txn, usize::MAX).expect("one whole batch");
        assert_eq!((h.record_count, h.producer_id, h.producer_epoch, h.base_sequence), (5, 7, 2, -1));
        assert!(h.is_transactional());
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
