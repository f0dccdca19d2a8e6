//! The transaction coordinator's environment on the broker's own storage:
//! `__transaction_state` for its records, the partitions' logs for markers (a marker in
//! `__consumer_offsets` also settles the transaction's offsets in the group
//! coordinator), and the broker's producer id blocks.

use super::internal_topic::{Durable, Entry, InternalTopic, KeyValue, TxnProducer};
use super::offsets_store::OFFSETS_TOPIC;
use super::producer_id_manager::ProducerIdManager;
use super::transaction_coordinator::{TopicPartition, TransactionCoordinator, TxnEnv, COORDINATOR_EPOCH, TXN_STATE_TOPIC};
use super::txn_log;
use super::GroupCoordinator;
use crate::config::TransactionConfig;
use crate::storage::LogManager;
use std::io;
use std::sync::Arc;

/// How the coordinator reaches partitions other brokers lead (the cluster provides it).
pub trait MarkerChannel: Send + Sync + 'static {
    /// Whether this broker leads `tp`.
    fn leads(&self, tp: &TopicPartition) -> bool;
    /// Writes the markers at the partitions' leaders; resolves once all are written or gone.
    fn send(&self, partitions: Vec<TopicPartition>, producer: TxnProducer, commit: bool) -> futures::future::BoxFuture<'static, ()>;
}

pub struct LogTxnEnv {
    state: InternalTopic,
    logs: Arc<LogManager>,
    groups: Arc<GroupCoordinator>,
    producer_ids: Arc<ProducerIdManager>,
    markers: Arc<dyn MarkerChannel>,
}

impl LogTxnEnv {
    pub fn new(
        logs: Arc<LogManager>,
        cfg: &TransactionConfig,
        groups: Arc<GroupCoordinator>,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn MarkerChannel>,
    ) -> Self {
        let state = InternalTopic::new(
            logs.clone(),
            TXN_STATE_TOPIC,
            cfg.state_log_partitions,
            "transaction.state.log.num.partitions",
            cfg.state_log_segment_bytes,
        );
        LogTxnEnv { state, logs, groups, producer_ids, markers }
    }

    /// Replays `__transaction_state` into the coordinator; returns the records read.
    pub fn load(&self, coordinator: &TransactionCoordinator) -> io::Result<usize> {
        self.state.scan(|partition, entry| match entry {
            Entry::Record { key, value, .. } => match txn_log::decode(&key, value.as_deref()) {
                Some((id, rec)) => coordinator.replay(id, rec),
                None => tracing::warn!(partition, "skipping a malformed {TXN_STATE_TOPIC} record"),
            },
            Entry::Marker { .. } => {}
        })
    }
}

impl TxnEnv for LogTxnEnv {
    fn append_state(&self, partition: i32, records: &[KeyValue], now_ms: i64) -> io::Result<Durable> {
        self.state.append(partition, records, None, now_ms)
    }

    fn write_marker(&self, tp: &TopicPartition, producer: TxnProducer, commit: bool) -> io::Result<Option<Durable>> {
        let Some(part) = self.logs.partition(&tp.0, tp.1) else { return Ok(None) };
        let (offset, flush_due) = part.append_marker(producer.0, producer.1, commit, COORDINATOR_EPOCH)?;
        if tp.0 == OFFSETS_TOPIC {
            self.groups.complete_txn(tp.1, producer.0, commit);
        }
        Ok(Some(if flush_due { Durable::pending(part, offset + 1) } else { Durable::done() }))
    }

    fn partition_exists(&self, tp: &TopicPartition) -> bool {
        self.logs.partition(&tp.0, tp.1).is_some()
    }

    fn next_producer_id(&self) -> io::Result<i64> {
        self.producer_ids.next_id()
    }

    fn leads(&self, tp: &TopicPartition) -> bool {
        self.markers.leads(tp)
    }

    fn send_markers(&self, partitions: Vec<TopicPartition>, producer: TxnProducer, commit: bool) -> futures::future::BoxFuture<'static, ()> {
        self.markers.send(partitions, producer, commit)
    }
}
