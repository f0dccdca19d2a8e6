//! The cluster: brokers that agree on metadata through a controller quorum, as Kafka's
//! KRaft mode does.
//!
//! - `records`: the metadata log's records, with KRaft's names;
//! - `image`: `MetadataImage`, what the records add up to; every broker answers from it;
//! - `metadata_cache`: what handlers ask the image (`MetadataCache`): leaders, endpoints;
//! - `observer`: a broker-only node's view of the quorum (KRaft's observer);
//! - `quorum`: `MetadataQuorum`, the narrow face of the consensus engine;
//! - `raft`: that face on openraft, with the log and snapshots on disk;
//! - `rpc`: frames on the controller listener;
//! - `controller`: `QuorumController`, the active controller's decisions (registration,
//!   heartbeats, fencing);
//! - `controller_topics`: the records topic creation, growth, deletion and configs become;
//! - `controller_rpc`: the controller listener's messages, server and client;
//! - `placement`: where a new partition's replicas go;
//! - `publisher`: the local logs follow the image (`MetadataPublisher`);
//! - `topic_admin`: what the admin handlers call; the metadata log decides;
//! - `txn_marker_channel`: transaction markers for partitions other brokers lead;
//! - `lifecycle`: starting this node's quorum member, the broker's registration and
//!   heartbeats (`BrokerLifecycleManager`).

pub mod broker_client;
pub mod controller;
pub mod controller_topics;
pub mod controller_rpc;
pub mod image;
pub mod lifecycle;
pub mod metadata_cache;
pub mod observer;
pub mod placement;
pub mod propagation;
pub mod publisher;
pub mod quorum;
pub mod raft;
pub mod records;
pub mod rpc;
pub mod topic_admin;
pub mod txn_marker_channel;
pub mod voters;

#[cfg(test)]
mod controller_tests;
