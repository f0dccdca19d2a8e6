//! Starting this node's part of the cluster and registering the broker, as Kafka's
//! `BrokerLifecycleManager` does at start.
//!
//! Today only the lone combined node runs (no `controller.quorum.voters`): it is its own
//! one-voter quorum in `<metadata.log.dir>/__cluster_metadata-0`, and at each start it
//! registers itself with a new incarnation id and a broker epoch one above the last. A
//! node configured for a cluster of several refuses to start until that is served.

use super::quorum::MetadataQuorum;
use super::raft::{network::Direct, QuorumConfig, RaftQuorum};
use super::records::{BrokerEndpoint, MetadataRecord};
use crate::config::BrokerConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The metadata log's directory name, as Kafka's.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

/// Refuses, before anything is written, a configuration this build cannot serve.
pub fn check_supported(cfg: &BrokerConfig) -> anyhow::Result<()> {
    if !cfg.cluster.is_lone() {
        anyhow::bail!(
            "clusters of several nodes (controller.quorum.voters, controller.quorum.bootstrap.servers) are not served yet; \
             run a single node by leaving them unset"
        );
    }
    Ok(())
}

/// Starts the quorum member this configuration asks for.
pub async fn start_quorum(cfg: &BrokerConfig) -> anyhow::Result<Arc<RaftQuorum>> {
    check_supported(cfg)?;
    let cluster = &cfg.cluster;
    let qc = QuorumConfig {
        node_id: cfg.node_id,
        // A lone voter never dials anyone; its address is never used.
        voters: BTreeMap::from([(cfg.node_id, "127.0.0.1:0".to_string())]),
        dir: cluster.metadata_log_dir.join(METADATA_DIR),
        election_timeout: Duration::from_millis(cluster.election_timeout_ms),
        snapshot_every: 10_000,
    };
    let quorum = RaftQuorum::start::<Direct>(qc).await?;
    // A lone voter elects itself at once; serve only once it has, so that every answer
    // (DescribeQuorum, the registration) sees a led quorum.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !quorum.is_leader() {
        if Instant::now() > deadline {
            anyhow::bail!("the lone metadata quorum did not elect itself within 10 s; check {}", cluster.metadata_log_dir.display());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(quorum)
}

/// Registers this broker (unfenced: a lone node has nobody to prove its liveness to),
/// waiting up to `wait` for the quorum to have a leader.
pub async fn register_broker(
    quorum: &dyn MetadataQuorum,
    cfg: &BrokerConfig,
    end_points: Vec<BrokerEndpoint>,
    wait: Duration,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + wait;
    while !quorum.is_leader() {
        if Instant::now() > deadline {
            anyhow::bail!("the metadata quorum elected no leader within {wait:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let previous = quorum.image().borrow().brokers.get(&cfg.node_id).map_or(0, |b| b.epoch);
    let epoch = previous + 1;
    quorum
        .append(vec![MetadataRecord::RegisterBrokerRecord {
            broker_id: cfg.node_id,
            incarnation_id: uuid::Uuid::new_v4(),
            broker_epoch: epoch,
            end_points,
            rack: cfg.cluster.rack.clone(),
            fenced: false,
        }])
        .await?;
    Ok(epoch)
}
