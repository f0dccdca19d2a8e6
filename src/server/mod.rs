//! The broker process: binds the listeners, accepts connections, runs the background
//! tasks (retention, the flusher, checkpoints) and shuts down cleanly.
//!
//! `Broker::start` is also the in-process broker for tests: give it a config with an
//! ephemeral listener (`PLAINTEXT://127.0.0.1:0`) and a temporary `log.dirs`.

pub mod connection;
pub use crate::broker_state::{Advertised, BrokerState};
pub mod connection_quotas;
pub mod controller_server;
pub mod request_pool;
mod zero_copy;

use crate::cluster::controller::QuorumController;
use crate::cluster::controller_rpc::ControllerChannel;
use crate::cluster::quorum::MetadataQuorum;
use crate::cluster::publisher::MetadataPublisher;
use crate::cluster::records::BrokerEndpoint;
use crate::cluster::topic_admin::TopicAdmin;
use crate::config::BrokerConfig;
use crate::coordinator::offsets_store::LogOffsetsStore;
use crate::coordinator::producer_id_manager::ProducerIdManager;
use crate::coordinator::transaction_coordinator::TransactionCoordinator;
use crate::coordinator::txn_store::LogTxnEnv;
use crate::coordinator::{GroupCoordinator, SystemClock};
use crate::metrics::Metrics;
use crate::storage::{LogCleaner, LogManager};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Broker {
    state: Arc<BrokerState>,
    local_addrs: Vec<SocketAddr>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    stopped: bool,
}

impl Broker {
    /// Opens the log directory (recovering it if needed), binds every listener and starts
    /// serving. Must be called inside a Tokio runtime.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Broker> {
        crate::cluster::lifecycle::check_supported(&config)?;
        anyhow::ensure!(config.cluster.roles.broker, "process.roles has no broker: start a ControllerServer");
        let config = crate::cluster::voters::resolve(config).await?;
        let config = Arc::new(config);
        let fd_limit = crate::storage::resource_budget::raise_open_file_limit();
        tracing::debug!(fd_limit, "open-file limit");
        let logs = {
            let c = config.clone();
            Arc::new(tokio::task::spawn_blocking(move || LogManager::open(c)).await??)
        };
        let member = crate::cluster::lifecycle::start_quorum_member(&config).await?;
        let quorum: Arc<dyn MetadataQuorum> = member.quorum.clone();
        let controller = Arc::new(QuorumController::new(quorum.clone(), Arc::new(SystemClock), config.cluster.session_timeout_ms));
        let groups = {
            let (logs, cfg) = (logs.clone(), config.group.clone());
            Arc::new(tokio::task::spawn_blocking(move || load_groups(logs, cfg)).await??)
        };
        let channel = Arc::new(ControllerChannel::new(quorum.clone(), controller.clone(), config.cluster.voters.clone()));
        let producer_ids = {
            let (channel, node) = (channel.clone(), config.node_id);
            let allocate: crate::coordinator::producer_id_manager::Allocate = Arc::new(move |floor| {
                let channel = channel.clone();
                Box::pin(async move {
                    channel
                        .allocate_producer_ids(node, floor, crate::coordinator::producer_id_manager::BLOCK)
                        .await
                        .map_err(|e| std::io::Error::other(e.to_string()))
                })
            });
            ProducerIdManager::new(allocate, crate::coordinator::producer_id_manager::legacy_floor(&config.log_dir)?)
        };
        // Topics live in the metadata log; the local logs follow it, and the handlers see
        // the image the logs match.
        let publisher = MetadataPublisher::new(logs.clone(), config.node_id, quorum.image().borrow().clone());
        let metadata = Arc::new(crate::cluster::metadata_cache::MetadataCache::new(config.node_id, publisher.image()));
        let markers = Arc::new(crate::cluster::txn_marker_channel::TxnMarkerChannel::new(metadata.clone(), inter_broker_listener(&config)));
        let txns = load_transactions(logs.clone(), &config, groups.clone(), producer_ids.clone(), markers).await?;
        let mut listeners = Vec::new();
        let mut controller_listeners = Vec::new();
        let mut advertised = Vec::new();
        let mut local_addrs = Vec::new();
        for l in &config.listeners.0 {
            let listener = bind(l.bind).map_err(|e| {
                anyhow::anyhow!("cannot listen on {} ({}): {e}; free the port or change `listeners`", l.bind, l.name)
            })?;
            // Controller listeners carry the quorum and the brokers' calls, never clients.
            if config.cluster.controller_listener_names.contains(&l.name) {
                controller_listeners.push(listener);
                continue;
            }
            let local = listener.local_addr()?;
            let port = if l.advertised_port == 0 { local.port() } else { l.advertised_port };
            advertised.push(Advertised { name: l.name.clone(), host: l.advertised_host.clone(), port });
            local_addrs.push(local);
            listeners.push((l.name.clone(), listener));
        }
        let topic_admin = TopicAdmin::new(logs.clone(), channel.clone(), publisher.clone(), metadata.clone(), inter_broker_listener(&config));
        let cleaner = Arc::new(LogCleaner::new(logs.clone(), config.cleaner.clone())?);
        cleaner.start();
        let state = Arc::new(BrokerState {
            config: config.clone(),
            logs,
            groups,
            txns,
            producer_ids,
            cleaner,
            metrics: Arc::new(Metrics::default()),
            advertised,
            quotas: connection_quotas::ConnectionQuotas::new(
                config.max_connections,
                config.max_connections_per_ip,
                config.max_connections_per_ip_overrides.clone(),
            ),
            request_pool: request_pool::RequestPool::new(config.queued_max_request_bytes),
            metadata,
            quorum: quorum.clone(),
            topic_admin,
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(background(state.clone(), cancel.clone()));
        tracker.spawn(flusher(state.clone(), cancel.clone()));
        if let Some(raft) = &member.raft {
            for l in controller_listeners {
                tracker.spawn(crate::cluster::controller_rpc::serve(l, raft.raft().clone(), controller.clone(), cancel.clone()));
            }
        }
        let end_points = state
            .advertised
            .iter()
            .map(|a| BrokerEndpoint { name: a.name.clone(), host: a.host.clone(), port: a.port, security_protocol: 0 })
            .collect();
        // The first block of producer ids, fetched while the broker starts serving;
        // InitProducerId waits for it if it comes first.
        {
            let ids = state.producer_ids.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move {
                // Asked again until the active controller answers (a cluster may still be
                // electing one); InitProducerId meanwhile gets a retriable error.
                while let Err(e) = ids.prefetch().await {
                    tracing::debug!(error = %e, "no producer ids yet; asking again");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            });
        }
        let incarnation_id = uuid::Uuid::new_v4();
        tracker.spawn(crate::cluster::lifecycle::run_broker_lifecycle(channel.clone(), config.clone(), incarnation_id, end_points, cancel.clone()));
        tracker.spawn(crate::cluster::lifecycle::run_controller_timers(controller.clone(), cancel.clone()));
        {
            tracker.spawn(publisher.clone().run(quorum.clone(), channel, cancel.clone()));
            // Serve once this broker can lead partitions and the topics on disk are in the
            // metadata log: a CreateTopics at once must find both.
            crate::cluster::lifecycle::wait_until_ready(&*quorum, config.node_id, incarnation_id, config.cluster.is_lone(), Duration::from_secs(30)).await?;
            // And once the local logs match the metadata log as it stands (a topic whose
            // creation a crash interrupted is completed first), as a Kafka broker catches
            // up with the metadata log before it serves.
            let at = quorum.image().borrow().offset;
            if let Err(e) = publisher.wait_applied(at, Duration::from_secs(600)).await {
                tracing::error!(error = %e, "serving before the local logs match the metadata log");
            }
        }
        for (name, listener) in listeners {
            tracker.spawn(accept_loop(listener, name, state.clone(), cancel.clone(), tracker.clone()));
        }
        tracing::info!(addrs = ?local_addrs, dir = %config.log_dir.display(), "ferrite is serving");
        Ok(Broker { state, local_addrs, cancel, tracker, stopped: false })
    }

    /// `host:port` of the first listener, for a client's `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        let a = &self.state.advertised[0];
        format!("{}:{}", a.host, a.port)
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Stops accepting, lets in-flight requests finish, flushes every log and writes the
    /// clean-shutdown marker.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop().await
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        self.cancel.cancel();
        self.state.groups.shutdown();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!("connections did not finish within 10 s; shutting down anyway");
        }
        let cleaner = self.state.cleaner.clone();
        tokio::task::spawn_blocking(move || cleaner.shutdown()).await?;
        self.state.quorum.shutdown().await;
        let logs = self.state.logs.clone();
        tokio::task::spawn_blocking(move || logs.shutdown()).await??;
        tracing::info!("ferrite stopped cleanly");
        Ok(())
    }

    /// Waits until the broker stops (only `shutdown` stops it).
    pub async fn wait(&self) {
        self.cancel.cancelled().await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if !self.stopped {
            // Dropped without shutdown (a test's in-process broker): stop serving; the log is
            // left as after a crash, which the next start recovers. The quorum stops too, and
            // the state (with the log directory) is let go only once it has.
            self.cancel.cancel();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let state = self.state.clone();
                rt.spawn(async move {
                    state.quorum.shutdown().await;
                    drop(state);
                });
            }
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(listener: TcpListener, name: String, state: Arc<BrokerState>, cancel: CancellationToken, tracker: TaskTracker) {
    loop {
        // At `max.connections`, wait for a slot: new connections queue in the backlog.
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = state.quotas.wait_for_slot() => p,
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = state.quotas.admit(peer.ip(), permit) else {
                    tracing::debug!(%peer, "closing a connection past max.connections.per.ip");
                    continue;
                };
                let info = connection::ConnectionInfo { peer, listener: name.clone() };
                tracker.spawn(connection::serve(stream, info, state.clone(), cancel.clone(), slot));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; raise the open-file limit if this repeats");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The listener other brokers are reached on: `inter.broker.listener.name`, else the
/// first listener that is not a controller listener.
fn inter_broker_listener(config: &BrokerConfig) -> String {
    config.get("inter.broker.listener.name").unwrap_or_else(|| {
        let names = &config.cluster.controller_listener_names;
        config.listeners.0.iter().find(|l| !names.contains(&l.name)).map(|l| l.name.clone()).unwrap_or_else(|| "PLAINTEXT".into())
    })
}

/// The resolution of group timers (session, rebalance and join delays).
const GROUP_TICK: Duration = Duration::from_millis(50);

/// Builds the group coordinator and replays `__consumer_offsets` into it.
fn load_groups(logs: Arc<LogManager>, cfg: crate::config::GroupConfig) -> anyhow::Result<GroupCoordinator> {
    let started = std::time::Instant::now();
    let store = Arc::new(LogOffsetsStore::new(logs.clone(), cfg.offsets_topic_partitions, cfg.offsets_topic_segment_bytes));
    let coordinator = GroupCoordinator::new(cfg, Arc::new(SystemClock), store.clone(), logs);
    let records = store.load(|entry| coordinator.load(entry))?;
    coordinator.finish_loading();
    if records > 0 {
        tracing::info!(records, groups = coordinator.list().len(), ms = started.elapsed().as_millis() as u64, "loaded consumer groups");
    }
    Ok(coordinator)
}

/// Builds the transaction coordinator, replays `__transaction_state` into it and
/// finishes transactions a stop interrupted between their Prepare and Complete records.
async fn load_transactions(
    logs: Arc<LogManager>,
    config: &BrokerConfig,
    groups: Arc<GroupCoordinator>,
    producer_ids: Arc<ProducerIdManager>,
    markers: Arc<dyn crate::coordinator::txn_store::MarkerChannel>,
) -> anyhow::Result<Arc<TransactionCoordinator>> {
    let started = std::time::Instant::now();
    let env = Arc::new(LogTxnEnv::new(logs, &config.txn, groups, producer_ids, markers));
    let coordinator = TransactionCoordinator::new(config.txn.clone(), Arc::new(SystemClock), env.clone());
    let records = {
        let (env, c) = (env.clone(), coordinator.clone());
        tokio::task::spawn_blocking(move || env.load(&c)).await??
    };
    coordinator
        .finish_loading()
        .await
        .map_err(|e| anyhow::anyhow!("cannot complete interrupted transactions: {e:?}; check the log directory"))?;
    if records > 0 {
        tracing::info!(records, transactional_ids = coordinator.list().len(), ms = started.elapsed().as_millis() as u64, "loaded transactions");
    }
    Ok(coordinator)
}

/// The flusher: every 100 ms, each partition whose flush policy (`flush.ms`) is due is
/// fsynced, and so are segments rolled since the last flush, which moves the recovery
/// point. Its own task, so a long fsync delays neither group timers nor checkpoints.
async fn flusher(state: Arc<BrokerState>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Segments recovered at start are fsynced by the first ticks; the recovery point
    // that then passes them is written at once, not at the next checkpoint interval, so
    // that a broker crashing again soon after a start does not re-read them all again.
    let mut recovered_checkpoint_due = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut rolled_pending = false;
        for t in state.logs.topics() {
            for p in &t.partitions {
                if let Err(e) = p.flush_if_due().await {
                    tracing::error!(topic = %t.name, partition = p.index, error = %e, "fsync failed (retried at the next tick); check the disk");
                }
                if recovered_checkpoint_due && p.log_async().await.has_unflushed_rolled() {
                    rolled_pending = true;
                }
            }
        }
        if recovered_checkpoint_due && !rolled_pending {
            recovered_checkpoint_due = false;
            let logs = state.logs.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || logs.checkpoint()).await {
                tracing::error!(error = %e, "writing checkpoint files failed; check the log directory");
            }
        }
    }
}

/// Retention, checkpoint files and group timers, each on its own interval.
async fn background(state: Arc<BrokerState>, cancel: CancellationToken) {
    let mut retention = tokio::time::interval(Duration::from_millis(state.config.retention_check_interval_ms));
    // One writer serves both Kafka intervals: every file at the shorter of the two.
    let every = state.config.offset_checkpoint_interval_ms.min(state.config.start_offset_checkpoint_interval_ms);
    let mut checkpoint = tokio::time::interval(Duration::from_millis(every));
    let mut group_timers = tokio::time::interval(GROUP_TICK);
    for t in [&mut retention, &mut checkpoint, &mut group_timers] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.reset();
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = retention.tick() => {
                let logs = state.logs.clone();
                let _ = tokio::task::spawn_blocking(move || logs.apply_retention()).await;
            }
            _ = group_timers.tick() => {
                state.groups.tick();
                state.txns.tick().await;
            }
            _ = checkpoint.tick() => {
                let logs = state.logs.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || logs.checkpoint()).await {
                    // Nothing is lost: recovery re-reads more of the log after a crash.
                    tracing::error!(error = %e, "writing checkpoint files failed; check the log directory");
                }
            }
        }
    }
}
