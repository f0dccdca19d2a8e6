//! An in-process broker for tests: an ephemeral port on 127.0.0.1, a fresh data
//! directory, its own Tokio runtime, a clean stop (and directory removal) when dropped.
//!
//! ```no_run
//! let broker = ferrite::testing::EmbeddedBroker::start();
//! let bootstrap = broker.bootstrap(); // hand to rdkafka's bootstrap.servers
//! ```

use crate::{Broker, BrokerConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct EmbeddedBroker {
    runtime: Option<tokio::runtime::Runtime>,
    broker: Option<Broker>,
    dir: PathBuf,
    owns_dir: bool,
    port: u16,
    overrides: BTreeMap<String, String>,
}

impl EmbeddedBroker {
    /// A broker with embedded defaults.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A broker with some Kafka configuration keys set.
    pub fn start_with(overrides: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("ferrite-test-{}", uuid::Uuid::new_v4().simple()));
        let mut b = Self::start_in(&dir, overrides).expect("embedded broker starts");
        b.owns_dir = true;
        b
    }

    /// A broker on an existing data directory (kept after drop).
    pub fn start_in(dir: &Path, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        // Quiet unless asked: FERRITE_LOG=ferrite=debug shows the broker's log in a test.
        if let Ok(filter) = std::env::var("FERRITE_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let overrides: BTreeMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut b = EmbeddedBroker { runtime: None, broker: None, dir: dir.to_owned(), owns_dir: false, port: 0, overrides };
        b.boot()?;
        Ok(b)
    }

    fn boot(&mut self) -> anyhow::Result<()> {
        let mut keys = self.overrides.clone();
        keys.insert("log.dirs".into(), self.dir.display().to_string());
        let addr = format!("PLAINTEXT://127.0.0.1:{}", self.port);
        keys.entry("listeners".into()).or_insert_with(|| addr.clone());
        keys.entry("advertised.listeners".into()).or_insert(addr);
        let config = BrokerConfig::from_map(keys)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let broker = runtime.block_on(Broker::start(config))?;
        self.port = broker.local_addrs()[0].port();
        self.broker = Some(broker);
        self.runtime = Some(runtime);
        Ok(())
    }

    /// `127.0.0.1:port`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("running").bootstrap()
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("running")
    }

    /// A clean stop and a start on the same port and data directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.boot()
    }

    /// A clean stop, `between` (say, a change to the data directory), and a start.
    pub fn stop_then(&mut self, between: impl FnOnce()) -> anyhow::Result<()> {
        self.stop()?;
        between();
        self.boot()
    }

    /// Stops without the clean-shutdown steps, as a crash would (the next start recovers).
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        let logs = self.broker.as_ref().map(|b| std::sync::Arc::downgrade(&b.state().logs));
        drop(self.broker.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
        // As after a real crash, nothing of the old broker may touch the directory (and its
        // `.lock`) any more: wait for the last holder of its log manager to let go.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while logs.as_ref().is_some_and(|l| l.strong_count() > 0) {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the crashed broker's log manager is still in use after 10 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.boot()
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if let (Some(broker), Some(rt)) = (self.broker.take(), self.runtime.take()) {
            rt.block_on(broker.shutdown())?;
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
        Ok(())
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "embedded broker did not stop cleanly");
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
