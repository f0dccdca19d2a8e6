//! Kafka's `ControllerServer`: a controller-only node (`process.roles=controller`). It is a
//! voter of the metadata quorum and, while it leads, the active controller — placement,
//! registrations and fencing, producer id blocks — for the brokers that call it over the
//! controller listener. It keeps no partitions and serves no clients: its `listeners` are
//! controller listeners only (the configuration refuses any other), and its directory
//! holds only `meta.properties` and the metadata log.

use crate::cluster::controller::QuorumController;
use crate::cluster::quorum::MetadataQuorum;
use crate::config::BrokerConfig;
use crate::coordinator::SystemClock;
use crate::storage::dir_lock::DirLock;
use crate::storage::LogManager;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct ControllerServer {
    quorum: Arc<dyn MetadataQuorum>,
    local_addrs: Vec<SocketAddr>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _lock: DirLock,
}

impl ControllerServer {
    pub async fn start(config: BrokerConfig) -> anyhow::Result<ControllerServer> {
        crate::cluster::lifecycle::check_supported(&config)?;
        assert!(config.cluster.roles.controller && !config.cluster.roles.broker, "a controller-only configuration");
        let config = crate::cluster::voters::resolve(config).await?;
        let dir = config.cluster.metadata_log_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}; set metadata.log.dir (or log.dirs) to a writable directory", dir.display()))?;
        let lock = DirLock::acquire(&dir)?;
        LogManager::load_meta(&config, &dir)?;
        let raft = crate::cluster::lifecycle::start_quorum(&config).await?;
        let quorum: Arc<dyn MetadataQuorum> = raft.clone();
        let controller = Arc::new(QuorumController::new(quorum.clone(), Arc::new(SystemClock), config.cluster.session_timeout_ms));
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let mut local_addrs = Vec::new();
        for l in &config.listeners.0 {
            let listener = super::bind(l.bind).map_err(|e| anyhow::anyhow!("cannot listen on {} ({}): {e}; free the port or change `listeners`", l.bind, l.name))?;
            local_addrs.push(listener.local_addr()?);
            tracker.spawn(crate::cluster::controller_rpc::serve(listener, raft.raft().clone(), controller.clone(), cancel.clone()));
        }
        tracker.spawn(crate::cluster::lifecycle::run_controller_timers(controller, cancel.clone()));
        tracing::info!(addrs = ?local_addrs, dir = %dir.display(), node = config.node_id, "ferrite controller is serving the metadata quorum");
        Ok(ControllerServer { quorum, local_addrs, cancel, tracker, _lock: lock })
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Stops serving the brokers and leaves the quorum with its log flushed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!("controller connections did not finish within 10 s; shutting down anyway");
        }
        self.quorum.shutdown().await;
        tracing::info!("ferrite controller stopped cleanly");
        Ok(())
    }
}
