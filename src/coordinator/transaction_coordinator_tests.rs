//! The transaction coordinator under a manual clock, over an environment that only
//! remembers what was written: state records and markers.

use super::*;
use crate::coordinator::clock::ManualClock;

#[derive(Default)]
struct MemoryEnv {
    state: Mutex<Vec<(i32, KeyValue)>>,
    markers: Mutex<Vec<(TopicPartition, TxnProducer, bool)>>,
    next_pid: Mutex<i64>,
    /// Partitions of topic "remote" are led elsewhere: their markers wait for `deliver`.
    deliver: Arc<tokio::sync::Notify>,
    remote_markers: Arc<Mutex<Vec<(TopicPartition, TxnProducer, bool)>>>,
}

impl TxnEnv for MemoryEnv {
    fn append_state(&self, partition: i32, records: &[KeyValue], _now_ms: i64) -> io::Result<Durable> {
        self.state.lock().unwrap().extend(records.iter().cloned().map(|r| (partition, r)));
        Ok(Durable::done())
    }
    fn write_marker(&self, tp: &TopicPartition, producer: TxnProducer, commit: bool) -> io::Result<Option<Durable>> {
        if tp.0 == "deleted" {
            return Ok(None);
        }
        self.markers.lock().unwrap().push((tp.clone(), producer, commit));
        Ok(Some(Durable::done()))
    }
    fn partition_exists(&self, tp: &TopicPartition) -> bool {
        tp.0 != "deleted"
    }
    fn next_producer_id(&self) -> io::Result<i64> {
        let mut n = self.next_pid.lock().unwrap();
        *n += 1;
        Ok(*n + 999)
    }
    fn leads(&self, tp: &TopicPartition) -> bool {
        tp.0 != "remote"
    }
    fn send_markers(&self, partitions: Vec<TopicPartition>, producer: TxnProducer, commit: bool) -> futures::future::BoxFuture<'static, ()> {
        let (deliver, out) = (self.deliver.clone(), self.remote_markers.clone());
        Box::pin(async move {
            deliver.notified().await;
            out.lock().unwrap().extend(partitions.into_iter().map(|tp| (tp, producer, commit)));
        })
    }
}

impl MemoryEnv {
    fn take_markers(&self) -> Vec<(TopicPartition, TxnProducer, bool)> {
        std::mem::take(&mut *self.markers.lock().unwrap())
    }
}

fn cfg() -> TransactionConfig {
    TransactionConfig { abort_check_interval_ms: 1000, expiry_check_interval_ms: 1000, id_expiration_ms: 100_000, ..TransactionConfig::default() }
}

fn setup() -> (Arc<ManualClock>, Arc<MemoryEnv>, Arc<TransactionCoordinator>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let env = Arc::new(MemoryEnv::default());
    let c = TransactionCoordinator::new(cfg(), clock.clone(), env.clone());
    (clock, env, c)
}

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_string(), p)
}

#[tokio::test]
async fn init_bumps_the_epoch_and_fences_the_older_producer() {
    let (_, _, c) = setup();
    let (pid, e0) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    assert_eq!((pid, e0), (1000, 0));
    let (pid2, e1) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    assert_eq!((pid2, e1), (pid, 1));
    assert_eq!(c.add_partitions("tx", pid, e0, &[tp("t", 0)]).await, Err(Error::ProducerFenced));
    assert_eq!(c.add_partitions("tx", pid + 1, e1, &[tp("t", 0)]).await, Err(Error::InvalidProducerIdMapping));
    assert_eq!(c.add_partitions("other", pid, e1, &[tp("t", 0)]).await, Err(Error::InvalidProducerIdMapping));
    assert_eq!(c.init_producer_id("tx", 0, None).await, Err(Error::InvalidTransactionTimeout));
    assert_eq!(c.init_producer_id("tx", 900_001, None).await, Err(Error::InvalidTransactionTimeout));
}

#[tokio::test]
async fn commit_writes_a_marker_into_every_partition_once() {
    let (_, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("a", 0), tp("b", 1)]).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("a", 0), tp("__consumer_offsets", 7)]).await.unwrap();
    let d = c.describe("tx").unwrap();
    assert_eq!(d.state, TxnState::Ongoing);
    assert_eq!(d.partitions.len(), 3);
    assert!(d.start_ms > 0);
    c.end_txn("tx", pid, epoch, true).await.unwrap();
    let mut markers = env.take_markers();
    markers.sort();
    assert_eq!(
        markers,
        vec![(tp("__consumer_offsets", 7), (pid, epoch), true), (tp("a", 0), (pid, epoch), true), (tp("b", 1), (pid, epoch), true)]
    );
    let d = c.describe("tx").unwrap();
    assert_eq!((d.state, d.partitions.len(), d.start_ms), (TxnState::CompleteCommit, 0, -1));
    // A retried EndTxn is answered as the first; the opposite outcome is refused.
    assert_eq!(c.end_txn("tx", pid, epoch, true).await, Ok(()));
    assert_eq!(c.end_txn("tx", pid, epoch, false).await, Err(Error::InvalidTxnState));
    assert!(env.take_markers().is_empty());
    // The next transaction aborts: the same producer, abort markers.
    c.add_partitions("tx", pid, epoch, &[tp("a", 0), tp("deleted", 0)]).await.unwrap();
    c.end_txn("tx", pid, epoch, false).await.unwrap();
    assert_eq!(env.take_markers(), vec![(tp("a", 0), (pid, epoch), false)]);
}

#[tokio::test]
async fn end_txn_without_a_transaction_is_an_invalid_state() {
    let (_, _, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    assert_eq!(c.end_txn("tx", pid, epoch, true).await, Err(Error::InvalidTxnState));
}

#[tokio::test]
async fn a_new_instance_aborts_the_open_transaction_of_the_old_one() {
    let (_, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("a", 0)]).await.unwrap();
    let (pid2, epoch2) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    assert_eq!((pid2, epoch2), (pid, epoch + 2), "one bump to fence and abort, one for the new instance");
    assert_eq!(env.take_markers(), vec![(tp("a", 0), (pid, epoch + 1), false)]);
    assert_eq!(c.end_txn("tx", pid, epoch, true).await, Err(Error::ProducerFenced));
    assert_eq!(c.describe("tx").unwrap().state, TxnState::Empty);
}

#[tokio::test]
async fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let (clock, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 5_000, None).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("a", 0)]).await.unwrap();
    clock.advance(4_000);
    c.tick().await;
    assert_eq!(c.describe("tx").unwrap().state, TxnState::Ongoing, "not yet timed out");
    clock.advance(2_000);
    c.tick().await;
    assert_eq!(env.take_markers(), vec![(tp("a", 0), (pid, epoch + 1), false)]);
    assert_eq!(c.describe("tx").unwrap().state, TxnState::CompleteAbort);
    assert_eq!(c.end_txn("tx", pid, epoch, true).await, Err(Error::ProducerFenced));
    assert_eq!(c.init_producer_id("tx", 5_000, Some((pid, epoch))).await, Err(Error::ProducerFenced));
    // A new instance (no expected epoch) takes over.
    assert_eq!(c.init_producer_id("tx", 5_000, None).await, Ok((pid, epoch + 2)));
}

#[tokio::test]
async fn kip_360_retries_get_the_current_epoch() {
    let (_, _, c) = setup();
    let (pid, e0) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    let (_, e1) = c.init_producer_id("tx", 60_000, Some((pid, e0))).await.unwrap();
    assert_eq!(e1, e0 + 1);
    // The answer was lost: the producer asks again with the epoch it had.
    assert_eq!(c.init_producer_id("tx", 60_000, Some((pid, e0))).await, Ok((pid, e1)));
    assert_eq!(c.init_producer_id("tx", 60_000, Some((pid, e1 + 5))).await, Err(Error::ProducerFenced));
}

#[tokio::test]
async fn an_exhausted_epoch_moves_to_a_new_producer_id() {
    let (_, env, c) = setup();
    let (pid, _) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    let stored = TxnRecord {
        producer_id: pid,
        producer_epoch: i16::MAX - 1,
        timeout_ms: 60_000,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        last_update_ms: 0,
        start_ms: -1,
    };
    c.replay("tx".into(), Some(stored));
    let (pid2, epoch2) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    assert_eq!((pid2, epoch2), (pid + 1, 0));
    assert_eq!(*env.next_pid.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_new_coordinator_replays_and_finishes_interrupted_commits() {
    let (clock, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("a", 0), tp("a", 1)]).await.unwrap();
    let (pid_b, epoch_b) = c.init_producer_id("open", 60_000, None).await.unwrap();
    c.add_partitions("open", pid_b, epoch_b, &[tp("b", 0)]).await.unwrap();
    // A stop after PrepareCommit was written: the stored records end there.
    let mut records = env.state.lock().unwrap().clone();
    let prepared = c.describe("tx").unwrap();
    let stored = TxnRecord {
        producer_id: pid,
        producer_epoch: epoch,
        timeout_ms: 60_000,
        state: TxnState::PrepareCommit,
        partitions: prepared.partitions.clone(),
        last_update_ms: clock.now_ms(),
        start_ms: prepared.start_ms,
    };
    records.push((partition_for("tx", 50), (txn_log::key("tx"), Some(txn_log::value(&stored)))));
    let env2 = Arc::new(MemoryEnv::default());
    let c2 = TransactionCoordinator::new(cfg(), clock.clone(), env2.clone());
    for (_, (k, v)) in records {
        let (id, rec) = txn_log::decode(&k, v.as_deref()).expect("well-formed");
        c2.replay(id, rec);
    }
    c2.finish_loading().await.unwrap();
    let mut markers = env2.take_markers();
    markers.sort();
    assert_eq!(markers, vec![(tp("a", 0), (pid, epoch), true), (tp("a", 1), (pid, epoch), true)]);
    assert_eq!(c2.describe("tx").unwrap().state, TxnState::CompleteCommit);
    // The open transaction stays open and its producer can still commit it.
    assert_eq!(c2.describe("open").unwrap().state, TxnState::Ongoing);
    c2.end_txn("open", pid_b, epoch_b, true).await.unwrap();
    assert_eq!(env2.take_markers(), vec![(tp("b", 0), (pid_b, epoch_b), true)]);
}

#[tokio::test]
async fn idle_ids_expire_and_open_ones_do_not() {
    let (clock, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("idle", 60_000, None).await.unwrap();
    c.init_producer_id("busy", 900_000, None).await.unwrap();
    let busy = c.describe("busy").unwrap();
    c.add_partitions("busy", busy.producer_id, busy.producer_epoch, &[tp("a", 0)]).await.unwrap();
    clock.advance(100_001);
    c.tick().await;
    assert!(c.describe("idle").is_none());
    assert!(c.describe("busy").is_some());
    assert_eq!(c.add_partitions("idle", pid, epoch, &[tp("a", 0)]).await, Err(Error::InvalidProducerIdMapping));
    let tombstones = env.state.lock().unwrap().iter().filter(|(_, (_, v))| v.is_none()).count();
    assert_eq!(tombstones, 1);
    assert_eq!(c.list().iter().map(|d| d.transactional_id.as_str()).collect::<Vec<_>>(), vec!["busy"]);
}

#[tokio::test]
async fn markers_for_other_brokers_partitions_are_sent_after_prepare_and_complete_the_transaction_later() {
    let (_, env, c) = setup();
    let (pid, epoch) = c.init_producer_id("tx", 60_000, None).await.unwrap();
    c.add_partitions("tx", pid, epoch, &[tp("local", 0), tp("remote", 1), tp("remote", 2)]).await.unwrap();
    c.end_txn("tx", pid, epoch, true).await.expect("answered once prepared");
    assert_eq!(env.take_markers(), vec![(tp("local", 0), (pid, epoch), true)], "the local marker at once");
    let d = c.describe("tx").unwrap();
    assert_eq!(d.state, TxnState::PrepareCommit, "prepared until the other brokers have theirs");
    assert_eq!(d.partitions.into_iter().collect::<Vec<_>>(), vec![tp("remote", 1), tp("remote", 2)]);
    // The producer's next steps wait.
    assert_eq!(c.add_partitions("tx", pid, epoch, &[tp("local", 0)]).await, Err(Error::ConcurrentTransactions));
    assert_eq!(c.end_txn("tx", pid, epoch, true).await, Err(Error::ConcurrentTransactions));
    assert_eq!(c.init_producer_id("tx", 60_000, None).await, Err(Error::ConcurrentTransactions));
    // The markers land: Complete.
    env.deliver.notify_one();
    for _ in 0..100 {
        if c.describe("tx").unwrap().state == TxnState::CompleteCommit {
            break;
        }
        tokio::task::yield_now().await;
    }
    let d = c.describe("tx").unwrap();
    assert_eq!((d.state, d.partitions.len()), (TxnState::CompleteCommit, 0));
    let mut sent = env.remote_markers.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, vec![(tp("remote", 1), (pid, epoch), true), (tp("remote", 2), (pid, epoch), true)]);
    assert!(c.add_partitions("tx", pid, epoch, &[tp("local", 0)]).await.is_ok(), "the next transaction starts");
}
