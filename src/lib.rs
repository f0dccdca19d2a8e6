//! Ferrite: a broker that speaks the Apache Kafka protocol.
//!
//! Layers, each in its own module: `server` (sockets, frames, zero-copy writes),
//! `handlers` (one module per Kafka API), `storage` (Kafka's log layout: LogManager, Log,
//! LogSegment, OffsetIndex, TimeIndex) and `config` (Kafka's configuration keys).

#[cfg(feature = "alloc-guard")]
pub mod alloc_guard;
pub mod broker_state;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod handlers;
pub mod metrics;
pub mod replication;
pub mod response_frame;
pub mod server;
pub mod storage;
pub mod testing;
pub mod time;

pub use config::BrokerConfig;
pub use server::Broker;

/// The leader epoch of every partition: one node, never a leader change.
pub const LEADER_EPOCH: i32 = 0;

#[cfg(feature = "alloc-guard")]
#[global_allocator]
static GLOBAL: alloc_guard::GuardedAlloc = alloc_guard::GuardedAlloc;
