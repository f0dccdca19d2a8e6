//! `MetadataQuorum` on openraft (0.9, pinned): the only module that knows the library.
//!
//! Voters are the controllers of `controller.quorum.voters`; broker-only nodes follow the
//! log as learners (KRaft's observers). Node ids are Kafka's `node.id`s. Each voter
//! initialises the quorum with the configured voters on its first start (openraft accepts
//! the same initial membership from every voter); later starts resume from disk.

mod log_store;
pub mod network;
mod state_machine;

use super::image::MetadataImage;
use super::quorum::{MetadataQuorum, QuorumError, QuorumStatus, ReplicaState};
use super::records::{MetadataBatch, MetadataRecord};
use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Raft, SnapshotPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use network::Envelope;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = MetadataBatch,
        R = u64,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// How to run this node's member of the quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: i32,
    /// `controller.quorum.voters`: node id → controller listener address.
    pub voters: BTreeMap<i32, String>,
    /// `__cluster_metadata-0` under the metadata log directory.
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`: a follower that hears nothing from a leader
    /// this long (plus up to as much again, at random) stands for election.
    pub election_timeout: Duration,
    /// Entries after which a snapshot is taken and older entries purged.
    pub snapshot_every: u64,
}

impl QuorumConfig {
    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }
}

pub struct RaftQuorum {
    node_id: i32,
    raft: Raft<TypeConfig>,
    image: watch::Receiver<Arc<MetadataImage>>,
}

fn failed(e: impl std::fmt::Display) -> QuorumError {
    QuorumError::Failed(e.to_string())
}

impl RaftQuorum {
    /// Opens the log and state machine in `cfg.dir` and joins the quorum; `E` wraps the
    /// quorum's messages for the controller listener.
    pub async fn start<E: Envelope>(cfg: QuorumConfig) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&cfg.dir)?;
        let log = log_store::LogStore::open(&cfg.dir)?;
        let (sm, image) = state_machine::StateMachine::open(&cfg.dir)?;
        let election = cfg.election_timeout.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: "ferrite".into(),
            heartbeat_interval: (election / 10).max(10),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
            max_in_snapshot_log_to_keep: cfg.snapshot_every.min(1000),
            ..Default::default()
        }
        .validate()?;
        let raft = Raft::new(cfg.node_id as u64, Arc::new(config), network::Network::<E>::default(), log, sm).await?;
        if cfg.is_voter() && !raft.is_initialized().await? {
            let members: BTreeMap<u64, BasicNode> = cfg.voters.iter().map(|(id, addr)| (*id as u64, BasicNode::new(addr))).collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node = cfg.node_id, voters = ?cfg.voters.keys().collect::<Vec<_>>(), "initialised the metadata quorum"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {} // another voter was first
                Err(e) => return Err(anyhow::anyhow!("could not initialise the metadata quorum: {e}")),
            }
        }
        // A lone voter need not wait out an election timeout after a restart.
        if cfg.is_voter() && cfg.voters.len() == 1 {
            let _ = raft.trigger().elect().await;
        }
        Ok(Arc::new(RaftQuorum { node_id: cfg.node_id, raft, image }))
    }

    /// The raft instance, for the controller listener's server half only.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }
}

impl MetadataQuorum for RaftQuorum {
    fn append(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        Box::pin(async move {
            match self.raft.client_write(MetadataBatch { records }).await {
                // openraft answers after the state machine applied the entry.
                Ok(resp) => Ok(resp.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(QuorumError::NotLeader { leader: f.leader_id.map(|l| l as i32) }),
                Err(RaftError::APIError(e)) => Err(failed(e)),
                Err(RaftError::Fatal(openraft::error::Fatal::Stopped)) => Err(QuorumError::ShuttingDown),
                Err(RaftError::Fatal(e)) => Err(failed(e)),
            }
        })
    }

    fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        let matched = |id: u64| -> i64 {
            if id == self.node_id as u64 {
                return m.last_log_index.map_or(0, |i| i as i64 + 1);
            }
            m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten()).map_or(-1, |l| l.index as i64 + 1)
        };
        let membership = m.membership_config.membership();
        QuorumStatus {
            leader_id: m.current_leader.map(|l| l as i32),
            leader_epoch: m.current_term as i64,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters: membership.voter_ids().map(|id| ReplicaState { node_id: id as i32, log_end_offset: matched(id) }).collect(),
            observers: membership.learner_ids().map(|id| ReplicaState { node_id: id as i32, log_end_offset: matched(id) }).collect(),
            caught_up: m.last_applied.map(|l| l.index) == m.last_log_index,
        }
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn add_observer(&self, node_id: i32, address: String) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(async move {
            match self.raft.add_learner(node_id as u64, BasicNode::new(address), false).await {
                Ok(_) => Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(QuorumError::NotLeader { leader: f.leader_id.map(|l| l as i32) }),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.raft.shutdown().await;
        })
    }
}

#[cfg(test)]
mod tests;
