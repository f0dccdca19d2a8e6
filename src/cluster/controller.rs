//! Kafka's `QuorumController`, the part that runs on the quorum's leader: it turns broker
//! registrations and heartbeats into metadata records, and fences brokers whose
//! heartbeats stop for `broker.session.timeout.ms`.
//!
//! Writes are serialised (Kafka's controller is single-threaded): each decision is taken
//! on the image as the previous write left it. Heartbeat times live only in the active
//! controller's memory, as in Kafka; a controller that becomes active gives every broker a
//! full session before it fences anyone.

use super::quorum::{MetadataQuorum, QuorumError};
use super::records::{BrokerEndpoint, MetadataRecord};
use crate::coordinator::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControllerError {
    /// Ask the active controller instead (`leader`, when known).
    #[error("not the active controller (active: {leader:?})")]
    NotController { leader: Option<i32> },
    /// The broker's registration is gone or newer: register again.
    #[error("stale broker epoch")]
    StaleBrokerEpoch,
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The name is taken in effect (Kafka: names that differ only in '.' and '_' collide).
    #[error("{0}")]
    InvalidTopic(String),
    /// CreatePartitions to a count not above the current one.
    #[error("{0}")]
    InvalidPartitions(String),
    /// The replicas cannot be placed (too few brokers, mixed racks).
    #[error("{0}")]
    Placement(String),
    /// A manual replica assignment names unknown brokers or is malformed.
    #[error("{0}")]
    InvalidAssignment(String),
    /// The quorum did not commit in time (no majority of voters reachable, or an election).
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
}

impl From<QuorumError> for ControllerError {
    fn from(e: QuorumError) -> Self {
        match e {
            QuorumError::NotLeader { leader } => ControllerError::NotController { leader },
            other => ControllerError::Failed(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub end_points: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub fenced: bool,
}

struct Sessions {
    /// Broker → last heartbeat (clock ms) seen by this controller.
    last_seen: HashMap<i32, i64>,
    /// The quorum epoch in which `last_seen` was gathered; a new epoch starts afresh.
    epoch: i64,
}

pub struct QuorumController {
    pub(super) quorum: Arc<dyn MetadataQuorum>,
    clock: Arc<dyn Clock>,
    session_timeout_ms: i64,
    pub(super) writes: tokio::sync::Mutex<()>,
    sessions: Mutex<Sessions>,
}

impl QuorumController {
    pub fn new(quorum: Arc<dyn MetadataQuorum>, clock: Arc<dyn Clock>, session_timeout_ms: u64) -> Self {
        QuorumController {
            quorum,
            clock,
            session_timeout_ms: session_timeout_ms as i64,
            writes: tokio::sync::Mutex::new(()),
            sessions: Mutex::new(Sessions { last_seen: HashMap::new(), epoch: -1 }),
        }
    }

    /// This node's controller epoch if it is the active controller and its image holds
    /// everything committed (a new leader first replays the log, as Kafka's controller
    /// does before it acts); waits up to a few seconds for that replay.
    pub(super) async fn check_leader(&self) -> Result<i64, ControllerError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let s = self.quorum.status();
            if s.leader_id != Some(self.quorum.node_id()) {
                return Err(ControllerError::NotController { leader: s.leader_id });
            }
            if s.caught_up {
                return Ok(s.leader_epoch);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ControllerError::Timeout(
                    "the active controller has metadata it could not commit for 5 s; is a majority of controller.quorum.voters reachable?".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Sessions as of this controller epoch: a new active controller starts everyone's
    /// session now.
    fn sessions(&self, epoch: i64) -> std::sync::MutexGuard<'_, Sessions> {
        let mut s = self.sessions.lock().unwrap();
        if s.epoch != epoch {
            let now = self.clock.now_ms();
            s.epoch = epoch;
            s.last_seen = self.quorum.image().borrow().brokers.keys().map(|id| (*id, now)).collect();
        }
        s
    }

    /// Registers a broker (fenced until its first heartbeat); returns its broker epoch. A
    /// retried registration of the same incarnation gets the epoch it already has.
    pub async fn register(&self, r: Registration) -> Result<i64, ControllerError> {
        let epoch = self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let existing = self.quorum.image().borrow().brokers.get(&r.broker_id).cloned();
        if let Some(b) = &existing {
            if b.incarnation_id == r.incarnation_id {
                return Ok(b.epoch);
            }
        }
        let broker_epoch = existing.map_or(1, |b| b.epoch + 1);
        self.quorum
            .append(vec![MetadataRecord::RegisterBrokerRecord {
                broker_id: r.broker_id,
                incarnation_id: r.incarnation_id,
                broker_epoch,
                end_points: r.end_points,
                rack: r.rack,
                fenced: true,
            }])
            .await?;
        let now = self.clock.now_ms();
        self.sessions(epoch).last_seen.insert(r.broker_id, now);
        tracing::info!(broker = r.broker_id, broker_epoch, "broker registered");
        Ok(broker_epoch)
    }

    /// A broker's heartbeat: keeps its session and unfences it.
    pub async fn heartbeat(&self, broker_id: i32, broker_epoch: i64) -> Result<HeartbeatReply, ControllerError> {
        let epoch = self.check_leader().await?;
        let current = self.quorum.image().borrow().brokers.get(&broker_id).cloned();
        let Some(b) = current.filter(|b| b.epoch == broker_epoch) else {
            return Err(ControllerError::StaleBrokerEpoch);
        };
        let now = self.clock.now_ms();
        self.sessions(epoch).last_seen.insert(broker_id, now);
        if b.fenced {
            let _turn = self.writes.lock().await;
            let still = self.quorum.image().borrow().brokers.get(&broker_id).is_some_and(|b| b.fenced && b.epoch == broker_epoch);
            if still {
                self.quorum.append(vec![MetadataRecord::UnfenceBrokerRecord { id: broker_id, epoch: broker_epoch }]).await?;
                tracing::info!(broker = broker_id, "broker unfenced");
            }
        }
        Ok(HeartbeatReply { fenced: false })
    }

    /// Allocates the next block of producer ids for `broker_id` (Kafka's
    /// AllocateProducerIds): [start, start + size) with start at least `floor` and above
    /// every block before, written as a `ProducerIdsRecord`.
    pub async fn allocate_producer_ids(&self, broker_id: i32, floor: i64, size: i64) -> Result<(i64, i64), ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        let broker_epoch = image.brokers.get(&broker_id).map_or(-1, |b| b.epoch);
        let start = image.next_producer_id.max(floor);
        let end = start.checked_add(size).ok_or_else(|| ControllerError::Failed("producer ids exhausted".into()))?;
        self.quorum.append(vec![MetadataRecord::ProducerIdsRecord { broker_id, broker_epoch, next_producer_id: end }]).await?;
        Ok((start, end))
    }

    /// Fences every unfenced broker whose session has run out. Call it often; it does
    /// nothing on a node that is not the active controller.
    pub async fn tick(&self) {
        let Ok(epoch) = self.check_leader().await else { return };
        // Decided and written in one turn: no registration slips in between.
        let _turn = self.writes.lock().await;
        let now = self.clock.now_ms();
        let expired: Vec<(i32, i64)> = {
            let image = self.quorum.image().borrow().clone();
            let mut sessions = self.sessions(epoch);
            image
                .unfenced_brokers()
                .filter(|b| {
                    let seen = *sessions.last_seen.entry(b.id).or_insert(now);
                    now - seen > self.session_timeout_ms
                })
                .map(|b| (b.id, b.epoch))
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        let records = expired.iter().map(|(id, epoch)| MetadataRecord::FenceBrokerRecord { id: *id, epoch: *epoch }).collect();
        match self.quorum.append(records).await {
            Ok(_) => tracing::warn!(brokers = ?expired.iter().map(|e| e.0).collect::<Vec<_>>(), "fenced brokers whose heartbeats stopped"),
            Err(e) => tracing::debug!(error = %e, "fencing did not commit"),
        }
    }
}
