//! The coordinators: state that is not a log but is kept in one. The group coordinator
//! runs consumer groups (classic JoinGroup/SyncGroup protocol) and keeps their committed
//! offsets in `__consumer_offsets`, and KIP-848 consumer groups (ConsumerGroupHeartbeat)
//! whose assignment the broker computes. Handlers reach it through `GroupCoordinator`; it
//! reaches storage only through `OffsetsStore`.

pub mod assignor;
pub mod classic_group;
pub mod clock;
pub mod consumer_group;
pub mod group_coordinator;
pub mod internal_topic;
pub mod member;
pub mod offsets_store;
pub mod producer_id_manager;
pub mod records;
pub mod topic_metadata;
pub mod transaction_coordinator;
pub mod txn_store;
pub mod wire;
pub mod txn_log;

pub use clock::{Clock, ManualClock, SystemClock};
pub use group_coordinator::GroupCoordinator;
pub use kafka_protocol::ResponseError as Error;
