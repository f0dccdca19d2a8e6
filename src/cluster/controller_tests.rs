//! `QuorumController` as a state machine under a controlled clock, on an in-memory quorum.

use super::controller::{ControllerError, QuorumController, Registration};
use super::image::MetadataImage;
use super::quorum::{MetadataQuorum, QuorumError, QuorumStatus};
use super::records::MetadataRecord;
use crate::coordinator::clock::ManualClock;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use uuid::Uuid;

/// A quorum of one in memory: appends apply at once; leadership is set by the test.
struct MemoryQuorum {
    image: Mutex<MetadataImage>,
    tx: watch::Sender<Arc<MetadataImage>>,
    leader: Mutex<Option<i32>>,
    epoch: AtomicI64,
}

impl MemoryQuorum {
    fn new() -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::new(MetadataImage::default()));
        Arc::new(MemoryQuorum { image: Mutex::new(MetadataImage::default()), tx, leader: Mutex::new(Some(1)), epoch: AtomicI64::new(1) })
    }
}

impl MetadataQuorum for MemoryQuorum {
    fn append(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        Box::pin(async move {
            if *self.leader.lock().unwrap() != Some(1) {
                return Err(QuorumError::NotLeader { leader: *self.leader.lock().unwrap() });
            }
            let mut img = self.image.lock().unwrap();
            let offset = img.offset + 1;
            img.apply_batch(offset, &records).map_err(QuorumError::Failed)?;
            self.tx.send_replace(Arc::new(img.clone()));
            Ok(offset)
        })
    }
    fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }
    fn status(&self) -> QuorumStatus {
        QuorumStatus {
            leader_id: *self.leader.lock().unwrap(),
            leader_epoch: self.epoch.load(Ordering::SeqCst),
            high_watermark: 0,
            voters: vec![],
            observers: vec![],
            caught_up: true,
        }
    }
    fn node_id(&self) -> i32 {
        1
    }
    fn add_observer(&self, _: i32, _: String) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(async { Ok(()) })
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn registration(id: i32, incarnation: u128) -> Registration {
    Registration { broker_id: id, incarnation_id: Uuid::from_u128(incarnation), end_points: vec![], rack: None }
}

fn fenced(q: &MemoryQuorum, id: i32) -> bool {
    q.image().borrow().brokers[&id].fenced
}

const SESSION: u64 = 9_000;

#[tokio::test]
async fn brokers_are_unfenced_by_heartbeats_and_fenced_when_they_stop() {
    let q = MemoryQuorum::new();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = QuorumController::new(q.clone(), clock.clone(), SESSION);
    assert_eq!(c.register(registration(2, 1)).await, Ok(1));
    assert!(fenced(&q, 2), "registered brokers start fenced");
    assert_eq!(c.register(registration(2, 1)).await, Ok(1), "a retried registration is idempotent");
    c.heartbeat(2, 1).await.unwrap();
    assert!(!fenced(&q, 2));

    clock.advance(SESSION as i64);
    c.tick().await;
    assert!(!fenced(&q, 2), "a session lasts broker.session.timeout.ms");
    clock.advance(1);
    c.tick().await;
    assert!(fenced(&q, 2), "fenced one millisecond after its session ran out");
    c.heartbeat(2, 1).await.unwrap();
    assert!(!fenced(&q, 2), "a heartbeat unfences it again");

    assert_eq!(c.heartbeat(2, 7).await, Err(ControllerError::StaleBrokerEpoch));
    assert_eq!(c.heartbeat(3, 1).await, Err(ControllerError::StaleBrokerEpoch), "unknown broker");
    assert_eq!(c.register(registration(2, 2)).await, Ok(2), "a new incarnation gets the next epoch");
    assert_eq!(c.heartbeat(2, 1).await, Err(ControllerError::StaleBrokerEpoch), "the old incarnation is stale");
}

#[tokio::test]
async fn only_the_leader_decides_and_a_new_leader_gives_everyone_a_full_session() {
    let q = MemoryQuorum::new();
    let clock = Arc::new(ManualClock::new(0));
    let c = QuorumController::new(q.clone(), clock.clone(), SESSION);
    c.register(registration(2, 1)).await.unwrap();
    c.heartbeat(2, 1).await.unwrap();

    *q.leader.lock().unwrap() = Some(3);
    assert_eq!(c.heartbeat(2, 1).await, Err(ControllerError::NotController { leader: Some(3) }));
    assert_eq!(c.register(registration(4, 1)).await, Err(ControllerError::NotController { leader: Some(3) }));
    clock.advance(60_000);
    c.tick().await;
    assert!(!fenced(&q, 2), "a follower fences nobody");

    // Leadership comes back in a new epoch, long after the last heartbeat it saw.
    *q.leader.lock().unwrap() = Some(1);
    q.epoch.store(2, Ordering::SeqCst);
    c.tick().await;
    assert!(!fenced(&q, 2), "a new active controller starts every session afresh");
    clock.advance(SESSION as i64 + 1);
    c.tick().await;
    assert!(fenced(&q, 2));
}
