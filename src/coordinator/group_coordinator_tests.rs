//! The coordinator with a manual clock and a store that only remembers: offset expiry,
//! and a fresh coordinator rebuilt from the records written by the first.

use super::*;
use crate::coordinator::clock::ManualClock;
use crate::coordinator::offsets_store::{Durable, TxnProducer};
use crate::coordinator::topic_metadata::StaticTopics;
use std::io;

#[derive(Default)]
struct MemoryStore(Mutex<Vec<(i32, KeyValue)>>);

impl OffsetsStore for MemoryStore {
    fn append(&self, partition: i32, records: &[KeyValue], _txn: Option<TxnProducer>, _now: i64) -> io::Result<Durable> {
        self.0.lock().unwrap().extend(records.iter().cloned().map(|r| (partition, r)));
        Ok(Durable::done())
    }
}

fn coordinator(clock: Arc<ManualClock>, store: Arc<MemoryStore>) -> GroupCoordinator {
    let cfg = GroupConfig { offsets_retention_ms: 60_000, offsets_retention_check_interval_ms: 1000, ..GroupConfig::default() };
    GroupCoordinator::new(cfg, clock, store, Arc::new(StaticTopics::default()))
}

fn offset(o: i64, ts: i64) -> CommittedOffset {
    CommittedOffset { offset: o, leader_epoch: -1, metadata: String::new(), commit_timestamp: ts }
}

#[tokio::test]
async fn offsets_of_an_offset_only_group_expire_after_the_retention() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Arc::new(MemoryStore::default());
    let c = coordinator(clock.clone(), store.clone());
    let now = clock.now_ms();
    c.commit_offsets("g", "", None, -1, Error::IllegalGeneration, vec![(("t".into(), 0), offset(5, now))]).await.unwrap();
    clock.advance(30_000);
    let later = clock.now_ms();
    c.commit_offsets("g", "", None, -1, Error::IllegalGeneration, vec![(("t".into(), 1), offset(9, later))]).await.unwrap();
    clock.advance(31_000); // partition 0's commit is now 61 s old, partition 1's 31 s
    c.tick();
    let left = c.fetch_offsets("g", None);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, ("t".to_string(), 1));
    clock.advance(30_000);
    c.tick();
    assert!(c.fetch_offsets("g", None).is_empty());
    assert!(c.list().is_empty(), "an empty group without offsets is removed");
    let tombstones = store.0.lock().unwrap().iter().filter(|(_, (_, v))| v.is_none()).count();
    assert_eq!(tombstones, 3, "two offsets and the group");
}

#[tokio::test]
async fn a_new_coordinator_replays_what_the_first_wrote() {
    let clock = Arc::new(ManualClock::new(5_000));
    let store = Arc::new(MemoryStore::default());
    let c = coordinator(clock.clone(), store.clone());
    let now = clock.now_ms();
    c.commit_offsets("a", "", None, -1, Error::IllegalGeneration, vec![(("t".into(), 0), offset(1, now)), (("t".into(), 1), offset(2, now))])
        .await
        .unwrap();
    c.commit_offsets("b", "", None, -1, Error::IllegalGeneration, vec![(("u".into(), 0), offset(3, now))]).await.unwrap();
    assert_eq!(c.delete_group("b").await, None);
    let replayed = coordinator(clock.clone(), Arc::new(MemoryStore::default()));
    for (_, (k, v)) in store.0.lock().unwrap().iter() {
        replayed.replay(records::decode(k, v.as_deref()).expect("well-formed"));
    }
    replayed.finish_loading();
    assert_eq!(replayed.fetch_offsets("a", None), c.fetch_offsets("a", None));
    assert!(replayed.fetch_offsets("b", None).is_empty());
    let names: Vec<String> = replayed.list().into_iter().map(|g| g.group_id).collect();
    assert_eq!(names, vec!["a"]);
    // Records of one group all go to its partition of __consumer_offsets.
    let parts: std::collections::BTreeSet<i32> =
        store.0.lock().unwrap().iter().filter(|(_, (k, _))| records::decode(k, None).is_some_and(|r| matches!(r, OffsetsRecord::Offset { ref group, .. } if group == "a"))).map(|(p, _)| *p).collect();
    assert_eq!(parts.len(), 1);
}

#[tokio::test]
async fn transactional_offsets_take_effect_at_the_commit_marker_also_on_replay() {
    let clock = Arc::new(ManualClock::new(5_000));
    let store = Arc::new(MemoryStore::default());
    let c = coordinator(clock.clone(), store.clone());
    let now = clock.now_ms();
    c.commit_txn_offsets("g", (7, 0), "", None, -1, vec![(("t".into(), 0), offset(10, now))]).await.unwrap();
    c.commit_txn_offsets("h", (8, 0), "", None, -1, vec![(("t".into(), 0), offset(20, now))]).await.unwrap();
    assert!(c.fetch_offsets("g", None).is_empty(), "pending until the marker");
    assert_eq!(c.unstable_partitions("g"), vec![("t".to_string(), 0)]);
    let (pg, ph) = (partition_for("g", 50), partition_for("h", 50));
    c.complete_txn(pg, 7, true);
    c.complete_txn(ph, 8, false);
    assert_eq!(c.fetch_offsets("g", None)[0].1.as_ref().map(|o| o.offset), Some(10));
    assert!(c.unstable_partitions("g").is_empty());
    assert!(c.fetch_offsets("h", None).is_empty(), "aborted offsets are dropped");
    // Replayed from the log: records of a transaction, then its markers.
    let replayed = coordinator(clock.clone(), Arc::new(MemoryStore::default()));
    for (p, (k, v)) in store.0.lock().unwrap().iter() {
        let rec = records::decode(k, v.as_deref()).unwrap();
        let txn = if *p == pg { Some(7) } else { Some(8) };
        replayed.load(Loaded::Record { rec, txn });
    }
    assert!(replayed.fetch_offsets("g", None).is_empty());
    replayed.load(Loaded::Marker { partition: pg, producer_id: 7, commit: true });
    replayed.load(Loaded::Marker { partition: ph, producer_id: 8, commit: false });
    replayed.finish_loading();
    assert_eq!(replayed.fetch_offsets("g", None), c.fetch_offsets("g", None));
    assert!(replayed.fetch_offsets("h", None).is_empty());
}

/// A store whose appends fail while `failing` is set (a full or broken disk).
#[derive(Default)]
struct FlakyStore {
    failing: std::sync::atomic::AtomicBool,
    inner: MemoryStore,
}

impl OffsetsStore for FlakyStore {
    fn append(&self, partition: i32, records: &[KeyValue], txn: Option<TxnProducer>, now: i64) -> io::Result<Durable> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::other("disk full"));
        }
        self.inner.append(partition, records, txn, now)
    }
}

#[tokio::test]
async fn an_assignment_that_cannot_be_stored_is_not_handed_out_and_the_group_rebalances() {
    use crate::coordinator::member::{JoinRequest, SyncRequest};
    let clock = Arc::new(ManualClock::new(1_000));
    let store = Arc::new(FlakyStore::default());
    let cfg = GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() };
    let c = GroupCoordinator::new(cfg, clock, store.clone(), Arc::new(StaticTopics::default()));
    let join = |member: &str| JoinRequest {
        member_id: member.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), bytes::Bytes::from_static(b"m"))],
        require_known_member_id: true,
    };
    let sync = |member: &str, generation_id: i32| SyncRequest {
        member_id: member.into(),
        group_instance_id: None,
        generation_id,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![(member.to_string(), bytes::Bytes::from_static(b"mine"))],
    };
    let id = c.join("g", join("")).await.member_id;
    let joined = c.join("g", join(&id)).await;
    assert_eq!((joined.error, joined.generation_id), (None, 1));
    store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = c.sync("g", sync(&id, 1)).await;
    assert_eq!(failed.error, Some(Error::CoordinatorNotAvailable));
    assert!(failed.assignment.is_empty());
    assert_eq!(c.heartbeat("g", &id, None, 1), Some(Error::RebalanceInProgress), "back to JoinGroup");
    store.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let rejoined = c.join("g", join(&id)).await;
    assert_eq!((rejoined.error, rejoined.generation_id), (None, 2));
    let synced = c.sync("g", sync(&id, 2)).await;
    assert_eq!((synced.error, &synced.assignment[..]), (None, &b"mine"[..]));
    assert_eq!(c.heartbeat("g", &id, None, 2), None);
}
