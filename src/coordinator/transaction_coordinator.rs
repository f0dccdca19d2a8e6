//! The TransactionCoordinator: every transactional id of this broker, its producer id and
//! epoch, its open transaction and the partitions in it; kept in `__transaction_state`.
//!
//! It follows Kafka's transaction protocol (KIP-98, with KIP-360's epoch bumps and
//! KIP-588's PRODUCER_FENCED): InitProducerId bumps the epoch and so fences older
//! producers of the same id (an open transaction of theirs is aborted first);
//! AddPartitionsToTxn/AddOffsetsToTxn move the id to Ongoing; EndTxn writes
//! PrepareCommit/PrepareAbort, then a commit or abort marker into every partition of the
//! transaction, then CompleteCommit/CompleteAbort. A transaction open longer than its
//! timeout is aborted with a bumped epoch. A crash between Prepare and Complete is
//! finished when the broker loads the state again.
//!
//! Markers for partitions this broker leads are written directly, under the coordinator
//! lock. Partitions other brokers lead get theirs through the marker channel (Kafka's
//! `TransactionMarkerChannelManager`, WriteTxnMarkers) once the Prepare record is
//! durable: EndTxn is answered then, as Kafka answers it, and the transaction stays
//! prepared — the producer's next transaction waits with CONCURRENT_TRANSACTIONS — until
//! every marker is written; only then is the Complete record written, so a coordinator
//! that stops in between sends them again when it loads the Prepare record. Storage and
//! other brokers are reached only through `TxnEnv`.

use super::clock::Clock;
use super::internal_topic::{partition_for, Durable, KeyValue, TxnProducer};
use super::txn_log::{self, TxnRecord, TxnState};
use super::Error;
use crate::config::TransactionConfig;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

pub const TXN_STATE_TOPIC: &str = "__transaction_state";

/// The coordinator epoch written into markers (one coordinator, never moved).
pub const COORDINATOR_EPOCH: i32 = 0;

pub type TopicPartition = (String, i32);

/// What the coordinator needs from the broker.
pub trait TxnEnv: Send + Sync + 'static {
    /// Appends records to a partition of `__transaction_state` (a page-cache write).
    fn append_state(&self, partition: i32, records: &[KeyValue], now_ms: i64) -> io::Result<Durable>;
    /// Writes a commit or abort marker; `None` when the partition no longer exists.
    fn write_marker(&self, tp: &TopicPartition, producer: TxnProducer, commit: bool) -> io::Result<Option<Durable>>;
    fn partition_exists(&self, tp: &TopicPartition) -> bool;
    fn next_producer_id(&self) -> io::Result<i64>;
    /// Whether this broker leads `tp` (its marker is written here by `write_marker`).
    fn leads(&self, _tp: &TopicPartition) -> bool {
        true
    }
    /// Writes markers into partitions other brokers lead; resolves once each is written
    /// or its partition is gone, retrying meanwhile.
    fn send_markers(&self, _partitions: Vec<TopicPartition>, _producer: TxnProducer, _commit: bool) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// A transactional id as the coordinator holds it.
#[derive(Debug, Clone)]
struct TxnMetadata {
    stored: TxnRecord,
    /// The producer id and epoch before the last bump (KIP-360 retries).
    last_producer_id: i64,
    last_producer_epoch: i16,
    /// Markers for other brokers' partitions are on their way; Complete follows them.
    markers_in_flight: bool,
}

/// A transactional id as DescribeTransactions and ListTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: TxnState,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: BTreeSet<TopicPartition>,
}

#[derive(Default)]
struct Inner {
    txns: HashMap<String, TxnMetadata>,
    last_abort_check: i64,
    last_expiry_check: i64,
}

pub struct TransactionCoordinator {
    cfg: TransactionConfig,
    clock: Arc<dyn Clock>,
    env: Arc<dyn TxnEnv>,
    inner: Mutex<Inner>,
    /// Itself, for the marker tasks that complete transactions later.
    me: std::sync::Weak<TransactionCoordinator>,
}

/// The durable appends of one operation, waited for after the lock is released.
type Pending = Vec<Durable>;

async fn settle(pending: Pending) -> Result<(), Error> {
    for d in pending {
        if let Err(e) = d.wait().await {
            tracing::error!(error = %e, "fsync of a transaction write failed; check the disk");
            return Err(Error::KafkaStorageError);
        }
    }
    Ok(())
}

fn storage_error(what: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        // No producer id ready yet (a block is on its way from the controller): retriable.
        return Error::CoordinatorLoadInProgress;
    }
    tracing::error!(error = %e, "writing {what} failed; check the log directory");
    Error::CoordinatorNotAvailable
}

impl TransactionCoordinator {
    pub fn new(cfg: TransactionConfig, clock: Arc<dyn Clock>, env: Arc<dyn TxnEnv>) -> Arc<Self> {
        let now = clock.now_ms();
        let inner = Inner { last_abort_check: now, last_expiry_check: now, ..Default::default() };
        Arc::new_cyclic(|me| TransactionCoordinator { cfg, clock, env, inner: Mutex::new(inner), me: me.clone() })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the id's current state to its partition of `__transaction_state`.
    fn persist(&self, id: &str, meta: &TxnMetadata, pending: &mut Pending) -> Result<(), Error> {
        let rec = (txn_log::key(id), Some(txn_log::value(&meta.stored)));
        let partition = partition_for(id, self.cfg.state_log_partitions);
        let d = self.env.append_state(partition, &[rec], self.clock.now_ms()).map_err(|e| storage_error(TXN_STATE_TOPIC, e))?;
        pending.push(d);
        Ok(())
    }

    fn transition(&self, id: &str, meta: &mut TxnMetadata, state: TxnState, pending: &mut Pending) -> Result<(), Error> {
        meta.stored.state = state;
        meta.stored.last_update_ms = self.clock.now_ms();
        self.persist(id, meta, pending)
    }

    /// Ends the open transaction of `meta`: Prepare record, a marker in every partition,
    /// Complete record. `epoch` is the epoch the markers carry (bumped when fencing).
    fn complete(&self, id: &str, meta: &mut TxnMetadata, commit: bool, pending: &mut Pending) -> Result<(), Error> {
        let (prepare, done) =
            if commit { (TxnState::PrepareCommit, TxnState::CompleteCommit) } else { (TxnState::PrepareAbort, TxnState::CompleteAbort) };
        if meta.stored.state != prepare {
            debug_assert_eq!(meta.stored.state, TxnState::Ongoing);
            self.transition(id, meta, prepare, pending)?;
        }
        let producer = (meta.stored.producer_id, meta.stored.producer_epoch);
        let mut elsewhere = Vec::new();
        for tp in &meta.stored.partitions {
            if !self.env.leads(tp) {
                elsewhere.push(tp.clone());
                continue;
            }
            match self.env.write_marker(tp, producer, commit) {
                Ok(Some(d)) => pending.push(d),
                Ok(None) => tracing::debug!(topic = %tp.0, partition = tp.1, "no marker for a deleted partition"),
                Err(e) => return Err(storage_error("a transaction marker", e)),
            }
        }
        if !elsewhere.is_empty() {
            // Sent once the Prepare record is durable; Complete is written when all landed.
            // (A reload of the Prepare record sends every marker again, as Kafka does.)
            meta.markers_in_flight = true;
            meta.stored.partitions = elsewhere.iter().cloned().collect();
            let (me, send, id) = (self.me.clone(), self.env.send_markers(elsewhere, producer, commit), id.to_string());
            pending.push(Durable::then_spawn(Box::pin(async move {
                send.await;
                if let Some(me) = me.upgrade() {
                    me.markers_written(&id, producer, commit).await;
                }
            })));
            return Ok(());
        }
        meta.stored.partitions.clear();
        meta.stored.start_ms = -1;
        self.transition(id, meta, done, pending)
    }

    /// Every marker of the prepared transaction of `producer` is written: Complete.
    async fn markers_written(&self, id: &str, producer: TxnProducer, commit: bool) {
        let mut pending = Pending::new();
        {
            let mut inner = self.lock();
            let Some(meta) = inner.txns.get_mut(id) else { return };
            let prepared = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            let state = meta.stored.state;
            if !meta.markers_in_flight || (meta.stored.producer_id, meta.stored.producer_epoch) != producer || state != prepared {
                return;
            }
            meta.markers_in_flight = false;
            meta.stored.partitions.clear();
            meta.stored.start_ms = -1;
            let done = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
            if let Err(e) = self.transition(id, meta, done, &mut pending) {
                tracing::warn!(transactional_id = %id, error = ?e, "could not record a completed transaction; it completes when the coordinator loads again");
            }
        }
        if let Err(e) = settle(pending).await {
            tracing::warn!(error = ?e, "a completed transaction's record was not made durable");
        }
    }

    /// Bumps the epoch, or moves to a new producer id when the epoch is exhausted. A
    /// fence (aborting a transaction its producer did not end) remembers no previous
    /// epoch, so the fenced producer cannot pass for a retry (as Kafka).
    fn bump_epoch(&self, meta: &mut TxnMetadata, fence: bool) -> Result<(), Error> {
        meta.last_producer_id = meta.stored.producer_id;
        meta.last_producer_epoch = if fence { -1 } else { meta.stored.producer_epoch };
        if meta.stored.producer_epoch >= i16::MAX - 1 {
            meta.stored.producer_id = self.env.next_producer_id().map_err(|e| storage_error("producer-id-block", e))?;
            meta.stored.producer_epoch = 0;
        } else {
            meta.stored.producer_epoch += 1;
        }
        Ok(())
    }

    // ---- InitProducerId ----

    /// InitProducerId with a transactional id: a new producer id, or the id's producer
    /// with its epoch bumped (fencing older instances; their open transaction is aborted).
    /// `expected` is the producer id and epoch a recovering producer already has (KIP-360).
    pub async fn init_producer_id(&self, id: &str, timeout_ms: i32, expected: Option<TxnProducer>) -> Result<TxnProducer, Error> {
        if id.is_empty() {
            return Err(Error::InvalidRequest);
        }
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.cfg.max_timeout_ms {
            return Err(Error::InvalidTransactionTimeout);
        }
        let mut pending = Pending::new();
        let result = {
            let mut inner = self.lock();
            let now = self.clock.now_ms();
            let result = match inner.txns.get_mut(id) {
                None => {
                    let pid = self.env.next_producer_id().map_err(|e| storage_error("producer-id-block", e))?;
                    let meta = TxnMetadata {
                        stored: TxnRecord {
                            producer_id: pid,
                            producer_epoch: 0,
                            timeout_ms,
                            state: TxnState::Empty,
                            partitions: BTreeSet::new(),
                            last_update_ms: now,
                            start_ms: -1,
                        },
                        last_producer_id: -1,
                        last_producer_epoch: -1,
                        markers_in_flight: false,
                    };
                    self.persist(id, &meta, &mut pending)?;
                    inner.txns.insert(id.to_string(), meta);
                    Ok((pid, 0))
                }
                Some(meta) => {
                    if let Some((pid, epoch)) = expected {
                        let same_id = pid == meta.stored.producer_id;
                        let retry = pid == meta.last_producer_id && epoch == meta.last_producer_epoch;
                        if retry && !same_id {
                            // The answer to a bump that moved to a new producer id was lost.
                            return Ok((meta.stored.producer_id, meta.stored.producer_epoch));
                        }
                        if !same_id {
                            return Err(Error::ProducerFenced);
                        }
                        if epoch != meta.stored.producer_epoch {
                            if epoch == meta.last_producer_epoch {
                                return Ok((meta.stored.producer_id, meta.stored.producer_epoch));
                            }
                            return Err(Error::ProducerFenced);
                        }
                    }
                    if meta.markers_in_flight {
                        // The last transaction's markers are still on their way to other brokers.
                        return Err(Error::ConcurrentTransactions);
                    }
                    if matches!(meta.stored.state, TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareEpochFence) {
                        // Fence the older producer: abort its transaction under a new epoch.
                        self.bump_epoch(meta, true)?;
                        self.complete(id, meta, false, &mut pending)?;
                    } else if meta.stored.state == TxnState::PrepareCommit {
                        self.complete(id, meta, true, &mut pending)?;
                    }
                    if meta.markers_in_flight {
                        // Ended once other brokers have their markers; the producer asks again.
                        Err(Error::ConcurrentTransactions)
                    } else {
                        self.bump_epoch(meta, false)?;
                        meta.stored.timeout_ms = timeout_ms;
                        self.transition(id, meta, TxnState::Empty, &mut pending)?;
                        Ok((meta.stored.producer_id, meta.stored.producer_epoch))
                    }
                }
            };
            result
        };
        settle(pending).await?;
        result
    }

    /// Checks the producer of a request against the id's current one.
    fn check_producer(meta: Option<&TxnMetadata>, producer_id: i64, epoch: i16) -> Result<(), Error> {
        let Some(meta) = meta else { return Err(Error::InvalidProducerIdMapping) };
        if meta.stored.producer_id != producer_id {
            return Err(Error::InvalidProducerIdMapping);
        }
        if meta.stored.producer_epoch != epoch {
            return Err(Error::ProducerFenced);
        }
        Ok(())
    }

    /// For TxnOffsetCommit: the producer must be the id's current one.
    pub fn validate_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<(), Error> {
        let inner = self.lock();
        let meta = inner.txns.get(id);
        Self::check_producer(meta, producer_id, epoch)?;
        match meta.map(|m| m.stored.state) {
            Some(TxnState::PrepareCommit | TxnState::PrepareAbort) => Err(Error::ConcurrentTransactions),
            _ => Ok(()),
        }
    }

    // ---- AddPartitionsToTxn / AddOffsetsToTxn ----

    /// Adds partitions to the id's transaction, starting one if none is open. Partitions
    /// that do not exist must have been filtered out by the caller.
    pub async fn add_partitions(&self, id: &str, producer_id: i64, epoch: i16, partitions: &[TopicPartition]) -> Result<(), Error> {
        let mut pending = Pending::new();
        {
            let mut inner = self.lock();
            let meta = inner.txns.get_mut(id);
            Self::check_producer(meta.as_deref(), producer_id, epoch)?;
            let meta = meta.expect("checked");
            match meta.stored.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => return Err(Error::ConcurrentTransactions),
                TxnState::Dead => return Err(Error::InvalidTxnState),
                TxnState::Ongoing if partitions.iter().all(|tp| meta.stored.partitions.contains(tp)) => return Ok(()),
                TxnState::Ongoing => {}
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    debug_assert!(meta.stored.partitions.is_empty());
                    meta.stored.start_ms = self.clock.now_ms();
                }
            }
            meta.stored.partitions.extend(partitions.iter().cloned());
            self.transition(id, meta, TxnState::Ongoing, &mut pending)?;
        }
        settle(pending).await
    }

    /// AddPartitionsToTxn v4+ `verify_only`: which partitions are in the id's transaction.
    pub fn verify_partitions(&self, id: &str, producer_id: i64, epoch: i16, partitions: &[TopicPartition]) -> Result<Vec<bool>, Error> {
        let inner = self.lock();
        let meta = inner.txns.get(id);
        Self::check_producer(meta, producer_id, epoch)?;
        let meta = meta.expect("checked");
        let ongoing = meta.stored.state == TxnState::Ongoing;
        Ok(partitions.iter().map(|tp| ongoing && meta.stored.partitions.contains(tp)).collect())
    }

    pub fn partition_exists(&self, tp: &TopicPartition) -> bool {
        self.env.partition_exists(tp)
    }

    // ---- EndTxn ----

    /// Commits or aborts the id's open transaction. A retry of an EndTxn that completed
    /// is answered as it was.
    pub async fn end_txn(&self, id: &str, producer_id: i64, epoch: i16, commit: bool) -> Result<(), Error> {
        let mut pending = Pending::new();
        {
            let mut inner = self.lock();
            let meta = inner.txns.get_mut(id);
            Self::check_producer(meta.as_deref(), producer_id, epoch)?;
            let meta = meta.expect("checked");
            match (meta.stored.state, commit) {
                (TxnState::Ongoing, _) => self.complete(id, meta, commit, &mut pending)?,
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return Ok(()),
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => return Err(Error::ConcurrentTransactions),
                _ => return Err(Error::InvalidTxnState),
            }
        }
        settle(pending).await
    }

    // ---- timers ----

    /// Aborts transactions open past their timeout (fencing their producer with a bumped
    /// epoch) and forgets transactional ids idle past `transactional.id.expiration.ms`.
    pub async fn tick(&self) {
        let mut pending = Pending::new();
        {
            let mut inner = self.lock();
            let now = self.clock.now_ms();
            if now - inner.last_abort_check >= self.cfg.abort_check_interval_ms {
                inner.last_abort_check = now;
                for (id, meta) in inner.txns.iter_mut() {
                    let open = meta.stored.state == TxnState::Ongoing;
                    if open && meta.stored.start_ms + i64::from(meta.stored.timeout_ms) < now {
                        tracing::info!(transactional_id = %id, producer_id = meta.stored.producer_id, "aborting a transaction open past its timeout");
                        let done = self.bump_epoch(meta, true).and_then(|_| self.complete(id, meta, false, &mut pending));
                        if let Err(e) = done {
                            tracing::warn!(transactional_id = %id, error = ?e, "could not abort a timed-out transaction; retrying later");
                        }
                    }
                }
            }
            if now - inner.last_expiry_check >= self.cfg.expiry_check_interval_ms {
                inner.last_expiry_check = now;
                let expired: Vec<String> = inner
                    .txns
                    .iter()
                    .filter(|(_, m)| {
                        matches!(m.stored.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                            && m.stored.last_update_ms + self.cfg.id_expiration_ms < now
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    let partition = partition_for(&id, self.cfg.state_log_partitions);
                    match self.env.append_state(partition, &[(txn_log::key(&id), None)], now) {
                        Ok(d) => {
                            pending.push(d);
                            inner.txns.remove(&id);
                        }
                        Err(e) => tracing::warn!(transactional_id = %id, error = %e, "could not expire a transactional id"),
                    }
                }
            }
        }
        if let Err(e) = settle(pending).await {
            tracing::warn!(error = ?e, "transaction timer writes were not made durable");
        }
    }

    // ---- loading ----

    /// Replays one record of `__transaction_state` (broker start).
    pub fn replay(&self, id: String, record: Option<TxnRecord>) {
        let mut inner = self.lock();
        match record {
            Some(stored) => {
                inner.txns.insert(id, TxnMetadata { stored, last_producer_id: -1, last_producer_epoch: -1, markers_in_flight: false });
            }
            None => {
                inner.txns.remove(&id);
            }
        }
    }

    /// After replay: transactions caught between Prepare and Complete by a stop are
    /// finished (their markers written again where they were already).
    pub async fn finish_loading(&self) -> Result<(), Error> {
        let mut pending = Pending::new();
        {
            let mut inner = self.lock();
            for (id, meta) in inner.txns.iter_mut() {
                let commit = match meta.stored.state {
                    TxnState::PrepareCommit => true,
                    TxnState::PrepareAbort | TxnState::PrepareEpochFence => false,
                    _ => continue,
                };
                tracing::info!(transactional_id = %id, commit, "completing a transaction interrupted by the last stop");
                self.complete(id, meta, commit, &mut pending)?;
            }
        }
        settle(pending).await
    }

    // ---- admin ----

    fn describe_meta(id: &str, m: &TxnMetadata) -> TxnDescription {
        TxnDescription {
            transactional_id: id.to_string(),
            state: m.stored.state,
            producer_id: m.stored.producer_id,
            producer_epoch: m.stored.producer_epoch,
            timeout_ms: m.stored.timeout_ms,
            start_ms: m.stored.start_ms,
            partitions: m.stored.partitions.clone(),
        }
    }

    pub fn describe(&self, id: &str) -> Option<TxnDescription> {
        self.lock().txns.get(id).map(|m| Self::describe_meta(id, m))
    }

    /// Every transactional id, ordered by id.
    pub fn list(&self) -> Vec<TxnDescription> {
        let inner = self.lock();
        let mut out: Vec<_> = inner.txns.iter().map(|(id, m)| Self::describe_meta(id, m)).collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
#[path = "transaction_coordinator_tests.rs"]
mod tests;
