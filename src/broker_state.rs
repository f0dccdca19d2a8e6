//! `BrokerState`: what every connection and handler shares — configuration, the logs,
//! the coordinators, the metadata quorum, the connection limits. Its own module so that
//! `server` (which accepts connections) and `handlers` (which answer requests) both use it
//! without importing each other.

use crate::cluster::metadata_cache::MetadataCache;
use crate::cluster::quorum::MetadataQuorum;
use crate::cluster::topic_admin::TopicAdmin;
use crate::config::BrokerConfig;
use crate::coordinator::producer_id_manager::ProducerIdManager;
use crate::coordinator::transaction_coordinator::TransactionCoordinator;
use crate::coordinator::GroupCoordinator;
use crate::metrics::Metrics;
use crate::server::{connection_quotas, request_pool};
use crate::storage::{LogCleaner, LogManager};
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is on the other end of a connection, and which listener it came in on.
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub listener: String,
}

/// A listener as clients are told about it.
#[derive(Debug, Clone)]
pub struct Advertised {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// What every connection and handler shares.
pub struct BrokerState {
    pub config: Arc<BrokerConfig>,
    pub logs: Arc<LogManager>,
    pub groups: Arc<GroupCoordinator>,
    pub txns: Arc<TransactionCoordinator>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub cleaner: Arc<LogCleaner>,
    pub metrics: Arc<Metrics>,
    pub advertised: Vec<Advertised>,
    pub quotas: Arc<connection_quotas::ConnectionQuotas>,
    pub request_pool: request_pool::RequestPool,
    /// The controller quorum as this node takes part in it (its image, its status).
    pub quorum: Arc<dyn MetadataQuorum>,
    /// The metadata image as handlers ask it (leaders, live brokers, endpoints).
    pub metadata: Arc<MetadataCache>,
    /// Topic creation, growth, deletion and configs, through the metadata log.
    pub topic_admin: TopicAdmin,
}

impl BrokerState {
    /// The advertised address for connections that arrived on `listener`.
    pub fn advertised_for(&self, listener: &str) -> &Advertised {
        self.advertised.iter().find(|a| a.name == listener).unwrap_or(&self.advertised[0])
    }
}
