//! Where the group coordinator keeps what it must not forget: the internal compacted
//! topic `__consumer_offsets`. A group lives in partition `abs(hashCode(groupId)) % n` as
//! in Kafka.
//!
//! `OffsetsStore` is the narrow interface the coordinator writes through; the unit tests
//! plug in a store that only remembers.

use super::internal_topic::{Entry, InternalTopic};
use super::records::{self, OffsetsRecord};
use crate::storage::LogManager;
use std::io;
use std::sync::Arc;

pub use super::internal_topic::{partition_for, Durable, KeyValue, TxnProducer};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub trait OffsetsStore: Send + Sync + 'static {
    /// Appends the records, in order, as one batch (transactional when `txn` is given).
    /// Must not block on I/O beyond a write into the page cache: the coordinator calls it
    /// under its lock.
    fn append(&self, partition: i32, records: &[KeyValue], txn: Option<TxnProducer>, now_ms: i64) -> io::Result<Durable>;

    /// Makes sure the partition exists (a transaction's marker will go there).
    fn ensure_partition(&self, _partition: i32) -> io::Result<()> {
        Ok(())
    }
}

/// What loading `__consumer_offsets` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A record; `txn` names the producer of a transactional offset commit.
    Record { rec: OffsetsRecord, txn: Option<i64> },
    /// The end of a producer's transaction in one partition.
    Marker { partition: i32, producer_id: i64, commit: bool },
}

/// The store on the broker's own log.
pub struct LogOffsetsStore(InternalTopic);

impl LogOffsetsStore {
    pub fn new(logs: Arc<LogManager>, partitions: i32, segment_bytes: i64) -> Self {
        LogOffsetsStore(InternalTopic::new(logs, OFFSETS_TOPIC, partitions, "offsets.topic.num.partitions", segment_bytes))
    }

    /// Reads every record of `__consumer_offsets`, partition by partition, in log order.
    pub fn load(&self, mut visit: impl FnMut(Loaded)) -> io::Result<usize> {
        self.0.scan(|partition, entry| match entry {
            Entry::Marker { producer_id, commit } => visit(Loaded::Marker { partition, producer_id, commit }),
            Entry::Record { txn, key, value } => match records::decode(&key, value.as_deref()) {
                Some(rec) => visit(Loaded::Record { rec, txn }),
                None => tracing::warn!(partition, "skipping a malformed {OFFSETS_TOPIC} record"),
            },
        })
    }
}

impl OffsetsStore for LogOffsetsStore {
    fn append(&self, partition: i32, records: &[KeyValue], txn: Option<TxnProducer>, now_ms: i64) -> io::Result<Durable> {
        self.0.append(partition, records, txn, now_ms)
    }

    fn ensure_partition(&self, partition: i32) -> io::Result<()> {
        self.0.partition(partition).map(|_| ())
    }
}
