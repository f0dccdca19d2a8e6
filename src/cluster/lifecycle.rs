//! Starting this node's part of the cluster and registering the broker, as Kafka's
//! `BrokerLifecycleManager` does at start.
//!
//! A lone combined node (no `controller.quorum.voters`) is its own one-voter quorum in
//! `<metadata.log.dir>/__cluster_metadata-0`. Every node registers its broker with the
//! active controller at each start (a new incarnation, a broker epoch one above the last)
//! and heartbeats; a broker is fenced until its first heartbeat and again when they stop.
//! Clusters of combined nodes (broker and controller each), with or without broker-only
//! nodes (observers of the quorum), are served; a node of one must have been formatted
//! with the cluster's id (or be given it). Controller-only nodes refuse to start for now.

use super::controller::{ControllerError, QuorumController, Registration};
use super::controller_rpc::{ControllerChannel, ControllerEnvelope};
use super::quorum::MetadataQuorum;
use super::raft::{QuorumConfig, RaftQuorum};
use super::records::BrokerEndpoint;
use crate::config::BrokerConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The metadata log's directory name, as Kafka's.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

/// Refuses, before anything is written, a configuration this build cannot serve.
pub fn check_supported(cfg: &BrokerConfig) -> anyhow::Result<()> {
    let c = &cfg.cluster;
    if c.is_lone() {
        return Ok(());
    }
    // The nodes of a cluster share one id: they are formatted with it (or given it), never
    // each inventing their own.
    if cfg.get("cluster.id").is_none() && !crate::storage::LogManager::is_formatted(cfg) {
        anyhow::bail!(
            "{} is not formatted: run `ferrite format --cluster-id ID` with this configuration first \
             (the same ID on every node; `ferrite random-uuid` makes one), or set CLUSTER_ID",
            cfg.log_dir.display()
        );
    }
    Ok(())
}

/// Starts the quorum member this configuration asks for.
/// This node's part of the quorum: a voter (its raft instance serves the controller
/// listener) or, on a broker-only node, an observer.
pub struct QuorumMember {
    pub quorum: Arc<dyn MetadataQuorum>,
    pub raft: Option<Arc<RaftQuorum>>,
}

pub async fn start_quorum_member(cfg: &BrokerConfig) -> anyhow::Result<QuorumMember> {
    check_supported(cfg)?;
    if !cfg.cluster.roles.controller {
        let observer = super::observer::ObserverQuorum::start(cfg.node_id, cfg.cluster.voters.clone());
        return Ok(QuorumMember { quorum: observer, raft: None });
    }
    let raft = start_quorum(cfg).await?;
    Ok(QuorumMember { quorum: raft.clone(), raft: Some(raft) })
}

pub async fn start_quorum(cfg: &BrokerConfig) -> anyhow::Result<Arc<RaftQuorum>> {
    check_supported(cfg)?;
    let cluster = &cfg.cluster;
    let voters = if cluster.is_lone() {
        // A lone voter never dials anyone; its address is never used.
        BTreeMap::from([(cfg.node_id, "127.0.0.1:0".to_string())])
    } else {
        cluster.voters.clone()
    };
    let qc = QuorumConfig {
        node_id: cfg.node_id,
        voters,
        dir: cluster.metadata_log_dir.join(METADATA_DIR),
        election_timeout: Duration::from_millis(cluster.election_timeout_ms),
        snapshot_every: 10_000,
    };
    let quorum = RaftQuorum::start::<ControllerEnvelope>(qc).await?;
    if !cluster.is_lone() {
        return Ok(quorum);
    }
    // A lone voter elects itself at once; serve only once it has, so that every answer
    // (DescribeQuorum, the registration) sees a led quorum.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(quorum.is_leader() && quorum.status().caught_up) {
        if Instant::now() > deadline {
            anyhow::bail!("the lone metadata quorum did not elect itself within 10 s; check {}", cluster.metadata_log_dir.display());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(quorum)
}

/// Kafka's `BrokerLifecycleManager`: registers this broker with the active controller
/// (a new incarnation at every start), then heartbeats every `broker.heartbeat.interval.ms`;
/// registers again when the controller no longer knows this incarnation. Runs until
/// `cancel`.
pub async fn run_broker_lifecycle(
    channel: Arc<ControllerChannel>,
    cfg: Arc<BrokerConfig>,
    incarnation_id: Uuid,
    end_points: Vec<BrokerEndpoint>,
    cancel: CancellationToken,
) {
    let interval = Duration::from_millis(cfg.cluster.heartbeat_interval_ms);
    let registration = Registration { broker_id: cfg.node_id, incarnation_id, end_points, rack: cfg.cluster.rack.clone() };
    let mut epoch: Option<i64> = None;
    let mut failures = 0u32;
    let mut failed = |e: ControllerError| {
        failures += 1;
        // Quiet through an election (about a second); then now and then.
        if failures % 100 == 20 {
            tracing::warn!(node = cfg.node_id, error = %e, "cannot reach the active controller; retrying");
        }
        Duration::from_millis(50)
    };
    loop {
        let pause = match epoch {
            None => match channel.register(registration.clone()).await {
                Ok(e) => {
                    tracing::debug!(node = cfg.node_id, epoch = e, "registered with the active controller");
                    epoch = Some(e);
                    Duration::ZERO // the first heartbeat unfences: send it at once
                }
                Err(e) => failed(e),
            },
            Some(e) => match channel.heartbeat(cfg.node_id, e).await {
                Ok(_) => interval,
                Err(ControllerError::StaleBrokerEpoch) => {
                    epoch = None;
                    Duration::ZERO
                }
                Err(e) => failed(e),
            },
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Waits until this incarnation of the broker is registered and unfenced (not the last
/// one's registration, still in the image after a restart) and the topics on disk are in
/// the metadata log. The lone node gives up after `wait`; a node of several waits for its
/// quorum as long as it takes (its peers may start later), saying so every ten seconds.
pub async fn wait_until_ready(quorum: &dyn MetadataQuorum, node_id: i32, incarnation_id: Uuid, lone: bool, wait: Duration) -> anyhow::Result<()> {
    let mut rx = quorum.image();
    let started = Instant::now();
    let ready = |img: &Arc<super::image::MetadataImage>| img.migrated && img.brokers.get(&node_id).is_some_and(|b| !b.fenced && b.incarnation_id == incarnation_id);
    loop {
        let ready = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(ready)).await;
        match ready {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(_)) => anyhow::bail!("the metadata quorum stopped before this broker registered"),
            Err(_) if lone && started.elapsed() >= wait => {
                anyhow::bail!("the broker did not register with its own metadata quorum within {wait:?}; check the metadata log directory")
            }
            Err(_) if lone => {}
            Err(_) => {
                let s = quorum.status();
                tracing::warn!(
                    node = node_id,
                    leader = ?s.leader_id,
                    waited_s = started.elapsed().as_secs(),
                    "waiting to register with the active controller before serving; are a majority of controller.quorum.voters running and reachable?"
                );
            }
        }
    }
}

/// Runs the active controller's timers (fencing) until `cancel`.
pub async fn run_controller_timers(controller: Arc<QuorumController>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => controller.tick().await,
        }
    }
}
