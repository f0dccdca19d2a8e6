//! Consumer groups with real librdkafka consumers (rdkafka crate) against an in-process
//! broker: splitting partitions, take-over when a member leaves or dies, cooperative
//! rebalancing, static membership, and committed offsets across broker restarts.

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Broker settings that keep group tests quick: no initial rebalance delay, and session
/// timeouts down to one second allowed.
const FAST_GROUPS: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0"), ("group.min.session.timeout.ms", "1000")];

#[derive(Default)]
struct Shared {
    /// (partition, offset) of every record consumed and successfully committed.
    got: Mutex<Vec<(i32, i64)>>,
    assigned: Mutex<BTreeSet<i32>>,
    /// Partitions revoked, per rebalance.
    revoked: Mutex<Vec<usize>>,
    rebalances: Mutex<usize>,
}

struct Recorder(Arc<Shared>);
impl ClientContext for Recorder {}
impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        *self.0.rebalances.lock().unwrap() += 1;
        if let Rebalance::Revoke(tpl) = r {
            self.0.revoked.lock().unwrap().push(tpl.count());
        }
    }
}

/// A group member polling in its own thread, committing after every record.
struct Member {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> Member {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        // KIP-848 members take their timeouts from the broker.
        if !extra.contains(&("group.protocol", "consumer")) {
            cfg.set("session.timeout.ms", "6000").set("heartbeat.interval.ms", "300");
        }
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let shared = Arc::new(Shared::default());
        let consumer: BaseConsumer<Recorder> = cfg.create_with_context(Recorder(shared.clone())).expect("consumer");
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    // Counted only once committed: a record whose commit fails (the
                    // partition moved) is the next owner's to read again.
                    // A commit refused mid-rebalance (REBALANCE_IN_PROGRESS, a stale member
                    // epoch) is retried: without a poll the partition cannot be revoked
                    // meanwhile, so nobody else reads it yet. Only if it keeps failing is the
                    // record read again (a seek, after which later records may repeat).
                    let committed = (0..40).any(|attempt| {
                        if attempt > 0 {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        consumer.commit_message(&m, CommitMode::Sync).is_ok()
                    });
                    if committed {
                        s.got.lock().unwrap().push((m.partition(), m.offset()));
                    } else {
                        let _ = consumer.seek(m.topic(), m.partition(), Offset::Offset(m.offset()), Duration::from_secs(1));
                    }
                }
                let now: BTreeSet<i32> =
                    consumer.assignment().map(|a| a.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default();
                *s.assigned.lock().unwrap() = now;
            }
            drop(consumer); // close: LeaveGroup for dynamic members
        });
        Member { shared, stop, thread: Some(thread) }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.shared.assigned.lock().unwrap().clone()
    }

    fn got(&self) -> Vec<(i32, i64)> {
        self.shared.got.lock().unwrap().clone()
    }

    fn rebalances(&self) -> usize {
        *self.shared.rebalances.lock().unwrap()
    }

    fn close(mut self) -> Arc<Shared> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        self.shared.clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Commits, retrying while the client is still looking up its coordinator.
fn commit_when_ready(c: &rdkafka::consumer::BaseConsumer, tpl: &TopicPartitionList) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.commit(tpl, CommitMode::Sync) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && e.to_string().contains("CoordinatorNotAvailable") => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("commit failed: {e}"),
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every member's assignment, disjoint and covering `0..partitions`.
fn split_evenly(members: &[&Member], partitions: i32) -> bool {
    let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assigned()).collect();
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == partitions as usize && union == (0..partitions).collect()
}

fn produce_keyed(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize, tag: &str) {
    let p = producer(bootstrap, &[]);
    let keys: Vec<String> = (0..per_partition * partitions as usize).map(|i| format!("{tag}-{i}")).collect();
    let records = keys
        .iter()
        .enumerate()
        .map(|(i, k)| BaseRecord::to(topic).partition((i % partitions as usize) as i32).key(k.as_bytes()).payload(k.as_bytes()))
        .collect();
    produce_all(&p, records);
}

/// Asserts that the union of what the members consumed is each offset exactly once.
fn assert_exactly_once(all: Vec<(i32, i64)>, partitions: i32, per_partition: i64) {
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for r in all {
        *seen.entry(r).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "records consumed twice: {dups:?}");
    for p in 0..partitions {
        for o in 0..per_partition {
            assert!(seen.contains_key(&(p, o)), "partition {p} offset {o} never consumed");
        }
    }
    assert_eq!(seen.len() as i64, partitions as i64 * per_partition);
}

fn run_split_and_take_over(strategy: &str) {
    let broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    let topic = format!("split-{strategy}");
    create_topic(&bs, &topic, 6, &[]);
    produce_keyed(&bs, &topic, 6, 50, "a");
    let extra = [("partition.assignment.strategy", strategy)];
    let m1 = Member::start(&bs, &topic, &topic, &extra);
    let m2 = Member::start(&bs, &topic, &topic, &extra);
    wait_until("two members split 6 partitions", Duration::from_secs(60), || split_evenly(&[&m1, &m2], 6));
    let revoked_before: usize = [&m1, &m2].iter().map(|m| m.shared.revoked.lock().unwrap().iter().sum::<usize>()).sum();
    let m3 = Member::start(&bs, &topic, &topic, &extra);
    wait_until("three members split 6 partitions", Duration::from_secs(60), || split_evenly(&[&m1, &m2, &m3], 6));
    assert_eq!([&m1, &m2, &m3].map(|m| m.assigned().len()), [2, 2, 2]);
    let revoked_after: usize = [&m1, &m2].iter().map(|m| m.shared.revoked.lock().unwrap().iter().sum::<usize>()).sum();
    if strategy == "cooperative-sticky" {
        // Incremental (KIP-429): only the two partitions that moved to the newcomer.
        assert_eq!(revoked_after - revoked_before, 2, "cooperative rebalancing revokes only what moves");
    }
    wait_until("the first 300 records consumed", Duration::from_secs(60), || {
        m1.got().len() + m2.got().len() + m3.got().len() >= 300
    });
    // One member leaves: the others take its partitions over.
    let left = m3.close();
    wait_until("two members take over", Duration::from_secs(60), || split_evenly(&[&m1, &m2], 6));
    produce_keyed(&bs, &topic, 6, 50, "b");
    wait_until("all 600 records consumed", Duration::from_secs(60), || {
        m1.got().len() + m2.got().len() + left.got.lock().unwrap().len() >= 600
    });
    let mut all = m1.got();
    all.extend(m2.got());
    all.extend(left.got.lock().unwrap().iter().copied());
    assert_exactly_once(all, 6, 100);
}

#[test]
fn three_consumers_split_partitions_and_take_over_from_one_that_leaves() {
    let _covers = covers(LIBRDKAFKA, &["groups"]);
    run_split_and_take_over("range");
}

#[test]
fn cooperative_sticky_rebalances_incrementally() {
    let _covers = covers(LIBRDKAFKA, &["groups"]);
    run_split_and_take_over("cooperative-sticky");
}

#[test]
fn static_member_restart_keeps_its_partitions_without_a_rebalance() {
    let _covers = covers(LIBRDKAFKA, &["groups"]);
    let broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    create_topic(&bs, "static", 4, &[]);
    let a = Member::start(&bs, "static-g", "static", &[("group.instance.id", "a"), ("session.timeout.ms", "30000")]);
    let b = Member::start(&bs, "static-g", "static", &[("group.instance.id", "b"), ("session.timeout.ms", "30000")]);
    wait_until("a and b split 4 partitions", Duration::from_secs(60), || split_evenly(&[&a, &b], 4));
    let (a_parts, b_rebalances) = (a.assigned(), b.rebalances());
    // A static member does not leave the group on close; its restart takes its old place.
    drop(a.close());
    let a2 = Member::start(&bs, "static-g", "static", &[("group.instance.id", "a"), ("session.timeout.ms", "30000")]);
    wait_until("the restarted member is assigned", Duration::from_secs(60), || !a2.assigned().is_empty());
    assert_eq!(a2.assigned(), a_parts, "the restarted static member gets its partitions back");
    std::thread::sleep(Duration::from_millis(1000)); // room for a rebalance, were one to happen
    assert_eq!(b.rebalances(), b_rebalances, "the other member saw no rebalance");
    assert_eq!(b.assigned().len(), 2);
}

#[test]
fn a_consumer_that_dies_is_removed_after_its_session_timeout() {
    let _covers = covers(KCAT, &["groups"]);
    let broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    create_topic(&bs, "dies", 4, &[]);
    // kcat (Debian's librdkafka) as a real second process, killed without a goodbye.
    let mut kcat = std::process::Command::new("kcat")
        .args(["-b", &bs, "-G", "dies-g", "-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=300", "-q", "-o", "end", "dies"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kcat is installed (compat-tests/setup)");
    let survivor = Member::start(&bs, "dies-g", "dies", &[]);
    wait_until("kcat and the survivor share the partitions", Duration::from_secs(60), || {
        let n = survivor.assigned().len();
        n > 0 && n < 4
    });
    kcat.kill().unwrap();
    kcat.wait().unwrap();
    let killed = Instant::now();
    wait_until("the survivor owns every partition", Duration::from_secs(60), || survivor.assigned().len() == 4);
    assert!(killed.elapsed() >= Duration::from_millis(1500), "taken over before the session timeout: {:?}", killed.elapsed());
    let groups = broker.broker().state().groups.describe("dies-g").expect("group exists");
    assert_eq!(groups.members.len(), 1);
}

/// Commits offsets, restarts (or crashes) the broker, and checks the group resumes there.
fn committed_offsets_survive(crash: bool) {
    let mut broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    create_topic(&bs, "resume", 2, &[]);
    produce_keyed(&bs, "resume", 2, 100, "r");
    let c = consumer(&bs, &[("group.id", "resume-g")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("resume", 0, Offset::Offset(37)).unwrap();
    tpl.add_partition_offset("resume", 1, Offset::Offset(64)).unwrap();
    commit_when_ready(&c, &tpl);
    drop(c);
    if crash {
        broker.crash_and_restart().unwrap();
    } else {
        broker.restart().unwrap();
    }
    let bs = broker.bootstrap();
    let m = Member::start(&bs, "resume-g", "resume", &[]);
    wait_until("the resumed group consumed the rest", Duration::from_secs(60), || m.got().len() >= 99);
    let got = m.got();
    let first = |p: i32| got.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).min();
    assert_eq!((first(0), first(1)), (Some(37), Some(64)), "resumed at the committed offsets");
    assert_eq!(got.len(), 63 + 36);
}

#[test]
fn group_resumes_at_committed_offsets_after_a_broker_restart() {
    let _covers = covers(LIBRDKAFKA, &["groups"]);
    committed_offsets_survive(false);
}

#[test]
fn committed_offsets_survive_a_broker_crash() {
    committed_offsets_survive(true);
}

#[test]
fn committed_offsets_are_read_back_and_checked() {
    let broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    create_topic(&bs, "fetched", 3, &[]);
    let c = consumer(&bs, &[("group.id", "fetch-g")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("fetched", 0, Offset::Offset(5)).unwrap();
    tpl.add_partition_offset("fetched", 2, Offset::Offset(9)).unwrap();
    commit_when_ready(&c, &tpl);
    let mut ask = TopicPartitionList::new();
    for p in 0..3 {
        ask.add_partition("fetched", p);
    }
    let got = c.committed_offsets(ask, Duration::from_secs(10)).unwrap();
    let offsets: Vec<Offset> = (0..3).map(|p| got.find_partition("fetched", p).unwrap().offset()).collect();
    assert_eq!(offsets, vec![Offset::Offset(5), Offset::Invalid, Offset::Offset(9)]);
    // A commit to a partition that does not exist is refused.
    let mut bad = TopicPartitionList::new();
    bad.add_partition_offset("fetched", 7, Offset::Offset(1)).unwrap();
    let err = c.commit(&bad, CommitMode::Sync);
    assert!(err.is_err(), "commit to a missing partition must fail");
}

/// OffsetDelete has no call in librdkafka's Rust or Python bindings: spoken raw here.
#[test]
fn offset_delete_removes_offsets_of_unsubscribed_topics_only() {
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    use kafka_protocol::messages::{ApiKey, GroupId, OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let broker = ferrite::testing::EmbeddedBroker::start_with(FAST_GROUPS);
    let bs = broker.bootstrap();
    create_topic(&bs, "od-live", 1, &[]);
    create_topic(&bs, "od-old", 1, &[]);
    let m = Member::start(&bs, "od-g", "od-live", &[]);
    wait_until("the member is assigned", Duration::from_secs(60), || m.assigned().len() == 1);
    // A second group, offset-only, holds an offset of another topic.
    let c = consumer(&bs, &[("group.id", "od-other")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("od-old", 0, Offset::Offset(4)).unwrap();
    commit_when_ready(&c, &tpl);
    let delete = |group: &str, topic: &str| -> OffsetDeleteResponse {
        let req = OffsetDeleteRequest::default().with_group_id(GroupId(StrBytes::from_string(group.into()))).with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
        ]);
        let mut s = raw::connect(&broker);
        raw::call(&mut s, ApiKey::OffsetDelete, 0, &req)
    };
    let code = |r: &OffsetDeleteResponse| (r.error_code, r.topics.first().map(|t| t.partitions[0].error_code));
    // A live group subscribed to the topic keeps its offsets.
    assert_eq!(code(&delete("od-g", "od-live")), (0, Some(kafka_protocol::ResponseError::GroupSubscribedToTopic.code())));
    // An empty group's offsets go.
    assert_eq!(code(&delete("od-other", "od-old")), (0, Some(0)));
    let mut ask = TopicPartitionList::new();
    ask.add_partition("od-old", 0);
    let got = c.committed_offsets(ask, Duration::from_secs(10)).unwrap();
    assert_eq!(got.find_partition("od-old", 0).unwrap().offset(), Offset::Invalid);
    assert_eq!(delete("nope", "od-old").error_code, kafka_protocol::ResponseError::GroupIdNotFound.code());
}

/// KIP-848 membership lives in memory: after a broker restart the members are told they
/// are unknown, rejoin, and carry on from the committed offsets with nothing lost.
#[test]
fn kip_848_group_carries_on_across_a_broker_restart() {
    let _covers = covers(LIBRDKAFKA, &["groups.kip848"]);
    let mut cfg = FAST_GROUPS.to_vec();
    cfg.push(("group.consumer.heartbeat.interval.ms", "300"));
    let mut broker = ferrite::testing::EmbeddedBroker::start_with(&cfg);
    let bs = broker.bootstrap();
    create_topic(&bs, "k848-restart", 2, &[]);
    produce_keyed(&bs, "k848-restart", 2, 50, "a");
    let m = Member::start(&bs, "k848-restart-g", "k848-restart", &[("group.protocol", "consumer")]);
    wait_until("the first 100 consumed", Duration::from_secs(60), || m.got().len() >= 100);
    broker.restart().unwrap();
    produce_keyed(&broker.bootstrap(), "k848-restart", 2, 50, "b");
    wait_until("the next 100 consumed", Duration::from_secs(60), || m.got().len() >= 200);
    assert_exactly_once(m.got(), 2, 100);
}
