//! The narrow face of the controller quorum: append record batches, read the image they
//! add up to, say who leads. Everything else in the cluster (the controller, the broker's
//! lifecycle, the handlers through the image) goes through `MetadataQuorum`; only
//! `cluster::raft` knows the consensus library behind it, so it can be replaced.

use super::image::MetadataImage;
use super::records::MetadataRecord;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::watch;

/// A node of the quorum as `DescribeQuorum` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaState {
    pub node_id: i32,
    /// The next offset the leader knows this node to have (-1: unknown).
    pub log_end_offset: i64,
}

/// The quorum as this node sees it (Kafka's `DescribeQuorum` partition data).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub leader_id: Option<i32>,
    /// KRaft's leader epoch: the Raft term.
    pub leader_epoch: i64,
    /// Everything below is committed (known to a majority of voters).
    pub high_watermark: i64,
    pub voters: Vec<ReplicaState>,
    pub observers: Vec<ReplicaState>,
    /// This node has applied every entry of its log to its image (a new leader has, once
    /// its image holds everything committed before it took over).
    pub caught_up: bool,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum QuorumError {
    /// Only the leader appends; `leader` is who does now, when known.
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    #[error("the metadata quorum is shutting down")]
    ShuttingDown,
    #[error("the metadata quorum failed: {0}")]
    Failed(String),
}

pub trait MetadataQuorum: Send + Sync + 'static {
    /// Appends `records` as one batch; resolves once it is committed and applied to this
    /// node's image, with the batch's offset. Only the leader accepts.
    fn append(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>>;

    /// The image after every batch applied on this node so far; changes are signalled.
    fn image(&self) -> watch::Receiver<Arc<MetadataImage>>;

    fn status(&self) -> QuorumStatus;

    /// Whether this node leads the quorum now (it is the active controller).
    fn is_leader(&self) -> bool {
        let s = self.status();
        s.leader_id.is_some() && s.leader_id == self.node_id().into()
    }

    fn node_id(&self) -> i32;

    /// Adds a node that follows the log without voting (a broker-only node: KRaft's
    /// observer). Leader only.
    fn add_observer(&self, node_id: i32, address: String) -> BoxFuture<'_, Result<(), QuorumError>>;

    fn shutdown(&self) -> BoxFuture<'_, ()>;
}
