//! Kafka's `LogManager`: the log directory, its topics and their partitions.
//!
//! On disk, as Kafka lays it out: `meta.properties`, one `<topic>-<partition>` directory per
//! partition holding its segments and a `partition.metadata` with the topic id, the offset
//! checkpoint files, and the `.kafka_cleanshutdown` marker written by a clean stop. Topic
//! configuration overrides (held by KRaft's metadata log in Kafka) live in
//! `topic-configs/<topic>.properties`.
//!
//! Creating partitions is all-or-nothing: a `<topic>.creating` file naming the first new
//! partition is written before any of them and removed once all are made; a failure rolls
//! back what was made, and a start that finds the file (a crash half-way) removes the
//! partial partitions before loading anything.

use super::checkpoint;
use super::dir_lock::DirLock;
use super::log::{LoadOptions, Log};
use super::partition::Partition;
use crate::config::{BrokerConfig, ConfigError, LogConfig};
use crate::time::now_ms;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
const RECOVERY_POINT: &str = "recovery-point-offset-checkpoint";
const LOG_START: &str = "log-start-offset-checkpoint";
const HIGH_WATERMARK: &str = "replication-offset-checkpoint";
const TOPIC_CONFIGS: &str = "topic-configs";
const DYNAMIC_CONFIGS: &str = "dynamic-configs";
const DYNAMIC_DEFAULT: &str = "cluster-default.properties";
const DYNAMIC_BROKER: &str = "broker.properties";
const CREATING: &str = ".creating";

#[derive(Clone)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub overrides: BTreeMap<String, String>,
    pub config: LogConfig,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }

    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    /// More partitions than the open-file or memory-map limit can hold (POLICY_VIOLATION).
    #[error("{0}")]
    ResourceLimit(String),
    /// No active controller could be reached (NOT_CONTROLLER: retry).
    #[error("{0}")]
    NotController(String),
    /// The metadata quorum did not decide in time (REQUEST_TIMED_OUT: retry).
    #[error("{0}")]
    TimedOut(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Default)]
struct TopicMap {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

pub struct LogManager {
    /// The broker configuration with its runtime (dynamic) overrides; replaced whole when
    /// those change.
    broker: RwLock<Arc<BrokerConfig>>,
    dir: PathBuf,
    pub cluster_id: String,
    topics: RwLock<TopicMap>,
    /// Serialises topic creation, deletion and partition growth (directory changes).
    admin: std::sync::Mutex<()>,
    /// Serialises checkpoint writes, each from a snapshot taken under it: a writer with an
    /// older snapshot can never replace a newer file.
    checkpoint_lock: std::sync::Mutex<()>,
    /// Held while the directory is open: no second broker may use it.
    _dir_lock: DirLock,
}

/// Kafka prints UUIDs as URL-safe base64 without padding.
pub fn uuid_to_kafka_string(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn uuid_from_kafka_string(s: &str) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim()).ok()?;
    Uuid::from_slice(&bytes).ok()
}

pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let bad = |why: &str| Err(TopicError::InvalidName(format!("topic name '{name}' is illegal: {why}")));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("it is longer than 249 characters");
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if name == "__cluster_metadata" {
        return bad("it is the name of the metadata log");
    }
    Ok(())
}

fn partition_dir_name(topic: &str, p: i32) -> String {
    format!("{topic}-{p}")
}

fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    let p: i32 = p.parse().ok()?;
    (p >= 0 && validate_topic_name(topic).is_ok()).then_some((topic, p))
}

fn read_properties(path: &Path) -> io::Result<BTreeMap<String, String>> {
    BrokerConfig::read_properties(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn write_properties(path: &Path, map: &BTreeMap<String, String>) -> io::Result<()> {
    let text: String = map.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    checkpoint::write_atomically(path, text.as_bytes())
}

impl LogManager {
    /// Opens (or initialises) the log directory and loads every partition, recovering
    /// those an unclean stop may have left torn.
    pub fn open(broker: Arc<BrokerConfig>) -> io::Result<Self> {
        let dir = broker.log_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create log.dirs {}: {e}; set log.dirs to a writable directory", dir.display()))
        })?;
        let dir_lock = DirLock::acquire(&dir)?;
        std::fs::create_dir_all(dir.join(TOPIC_CONFIGS))?;
        let cluster_id = Self::load_meta(&broker, &dir)?;
        std::fs::create_dir_all(dir.join(DYNAMIC_CONFIGS))?;
        let broker = {
            let default = read_properties(&dir.join(DYNAMIC_CONFIGS).join(DYNAMIC_DEFAULT)).unwrap_or_default();
            let node = read_properties(&dir.join(DYNAMIC_CONFIGS).join(DYNAMIC_BROKER)).unwrap_or_default();
            match broker.with_dynamic(default, node) {
                Ok(cfg) => Arc::new(cfg),
                Err(e) => {
                    tracing::warn!(error = %e, "stored dynamic broker configuration is invalid; using the static configuration");
                    broker
                }
            }
        };
        let clean_marker = dir.join(CLEAN_SHUTDOWN);
        let clean = clean_marker.exists();
        Self::finish_interrupted_creations(&dir)?;
        let recovery = checkpoint::read(&dir.join(RECOVERY_POINT))?;
        let starts = checkpoint::read(&dir.join(LOG_START))?;

        let mut grouped: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if name.ends_with("-delete") {
                std::fs::remove_dir_all(entry.path())?;
                continue;
            }
            // The metadata log lives beside the partitions, as in Kafka, and is not one.
            if name == crate::cluster::lifecycle::METADATA_DIR {
                continue;
            }
            if let Some((topic, p)) = parse_partition_dir(&name) {
                grouped.entry(topic.to_string()).or_default().push(p);
            }
        }
        let mgr = LogManager {
            broker: RwLock::new(broker.clone()),
            dir: dir.clone(),
            cluster_id,
            topics: RwLock::new(TopicMap::default()),
            admin: std::sync::Mutex::new(()),
            checkpoint_lock: std::sync::Mutex::new(()),
            _dir_lock: dir_lock,
        };
        let now = now_ms();
        for (name, mut parts) in grouped {
            parts.sort_unstable();
            let overrides = read_properties(&dir.join(TOPIC_CONFIGS).join(format!("{name}.properties"))).unwrap_or_default();
            let config = LogConfig::resolve(&broker, &overrides).unwrap_or_else(|e| {
                tracing::warn!(topic = %name, error = %e, "stored topic config is invalid; using broker defaults");
                broker.log.clone()
            });
            let count = parts.last().map(|p| p + 1).unwrap_or(0);
            let mut id = None;
            let mut partitions = Vec::new();
            for p in 0..count {
                let pdir = dir.join(partition_dir_name(&name, p));
                let key = (name.clone(), p);
                let log = Log::open(
                    &pdir,
                    config.clone(),
                    LoadOptions {
                        clean_shutdown: clean,
                        recovery_point: recovery.get(&key).copied().unwrap_or(0),
                        log_start_offset: starts.get(&key).copied().unwrap_or(0),
                        now_ms: now,
                    },
                )?;
                if id.is_none() {
                    id = Self::read_topic_id(&pdir);
                }
                partitions.push(Arc::new(Partition::new(&name, p, log)));
            }
            let id = match id {
                Some(id) => id,
                None => Uuid::new_v4(),
            };
            for p in 0..count {
                Self::write_topic_id(&dir.join(partition_dir_name(&name, p)), id)?;
            }
            let topic = Arc::new(Topic { name: name.clone(), id, overrides, config, partitions });
            let mut map = mgr.topics.write().unwrap();
            map.by_id.insert(id, topic.clone());
            map.by_name.insert(name, topic);
        }
        if clean {
            std::fs::remove_file(&clean_marker)?;
            std::fs::File::open(&dir)?.sync_all()?;
        }
        Ok(mgr)
    }

    /// `kafka-storage format`: writes `meta.properties` with `cluster_id` into the log
    /// directory (and the metadata log directory, when it is another). Returns false when
    /// it already held that cluster id; another id is an error unless
    /// `ignore_formatted`, and is never overwritten.
    pub fn format(broker: &BrokerConfig, cluster_id: &str, ignore_formatted: bool) -> io::Result<bool> {
        if uuid_from_kafka_string(cluster_id).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{cluster_id:?} is not a cluster id (22 characters of URL-safe base64, as `ferrite random-uuid` prints)")));
        }
        let mut dirs = vec![broker.log_dir.clone()];
        if broker.cluster.metadata_log_dir != broker.log_dir {
            dirs.push(broker.cluster.metadata_log_dir.clone());
        }
        let mut wrote = false;
        for dir in dirs {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("meta.properties");
            if path.exists() {
                let meta = read_properties(&path)?;
                let stored = meta.get("cluster.id").cloned().unwrap_or_default();
                if stored == cluster_id || ignore_formatted {
                    continue;
                }
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is already formatted for cluster {stored}; use another directory, or --ignore-formatted to leave it as it is", dir.display()),
                ));
            }
            let meta = BTreeMap::from([
                ("version".to_string(), "1".to_string()),
                ("node.id".to_string(), broker.node_id.to_string()),
                ("cluster.id".to_string(), cluster_id.to_string()),
                ("directory.id".to_string(), uuid_to_kafka_string(Uuid::new_v4())),
            ]);
            write_properties(&path, &meta)?;
            wrote = true;
        }
        Ok(wrote)
    }

    /// Whether the log directory has been formatted (holds a `meta.properties`).
    pub fn is_formatted(broker: &BrokerConfig) -> bool {
        broker.log_dir.join("meta.properties").exists()
    }

    /// Reads (or writes, on first start) `meta.properties` in `dir`: the node and cluster it
    /// belongs to must be this configuration's. Returns the cluster id.
    pub fn load_meta(broker: &BrokerConfig, dir: &Path) -> io::Result<String> {
        let path = dir.join("meta.properties");
        let mut meta = if path.exists() { read_properties(&path)? } else { BTreeMap::new() };
        if let Some(stored) = meta.get("node.id") {
            if stored != &broker.node_id.to_string() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} belongs to node.id {stored}, not {}; point log.dirs elsewhere or fix node.id", dir.display(), broker.node_id),
                ));
            }
        }
        let cluster_id = match (meta.get("cluster.id"), broker.get("cluster.id")) {
            (Some(stored), Some(wanted)) if stored != &wanted => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} belongs to cluster {stored}, not {wanted}", dir.display()),
                ))
            }
            (Some(stored), _) => stored.clone(),
            (None, Some(wanted)) => wanted,
            (None, None) => uuid_to_kafka_string(Uuid::new_v4()),
        };
        if !path.exists() {
            meta.insert("version".into(), "1".into());
            meta.insert("node.id".into(), broker.node_id.to_string());
            meta.insert("cluster.id".into(), cluster_id.clone());
            meta.insert("directory.id".into(), uuid_to_kafka_string(Uuid::new_v4()));
            write_properties(&path, &meta)?;
        }
        Ok(cluster_id)
    }

    fn read_topic_id(pdir: &Path) -> Option<Uuid> {
        let text = std::fs::read_to_string(pdir.join("partition.metadata")).ok()?;
        text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(uuid_from_kafka_string)
    }

    fn write_topic_id(pdir: &Path, id: Uuid) -> io::Result<()> {
        if Self::read_topic_id(pdir) == Some(id) {
            return Ok(());
        }
        let text = format!("version: 0\ntopic_id: {}\n", uuid_to_kafka_string(id));
        checkpoint::write_atomically(&pdir.join("partition.metadata"), text.as_bytes())
    }

    /// The broker configuration in effect (static keys and runtime overrides).
    pub fn broker_config(&self) -> Arc<BrokerConfig> {
        self.broker.read().unwrap().clone()
    }

    /// Replaces the runtime overrides of the cluster-wide default (`for_default`, broker
    /// resource "") or of this broker, persists them in `dynamic-configs/`, and applies
    /// the new topic defaults to every topic at once (topics' own overrides still win).
    pub fn alter_broker_config(&self, for_default: bool, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap();
        let current = self.broker_config();
        let (default, node) = if for_default {
            (overrides.clone(), current.dynamic_broker.clone())
        } else {
            (current.dynamic_default.clone(), overrides.clone())
        };
        let next = Arc::new(current.with_dynamic(default, node)?);
        let topics = self.topics();
        let mut configs = Vec::with_capacity(topics.len());
        for t in &topics {
            configs.push(LogConfig::resolve(&next, &t.overrides)?);
        }
        if validate_only {
            return Ok(());
        }
        let path = self.dir.join(DYNAMIC_CONFIGS).join(if for_default { DYNAMIC_DEFAULT } else { DYNAMIC_BROKER });
        write_properties(&path, &overrides)?;
        *self.broker.write().unwrap() = next;
        for (t, config) in topics.iter().zip(configs) {
            for p in &t.partitions {
                p.log().set_config(config.clone());
            }
            self.replace_topic(Topic { config, ..Topic::clone(t) });
        }
        tracing::info!(scope = if for_default { "cluster default" } else { "this broker" }, "dynamic broker configuration changed");
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().unwrap().by_name.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().unwrap().by_id.get(&id).cloned()
    }

    pub fn partition(&self, topic: &str, p: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partition(p).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.topics.read().unwrap().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a topic with `partitions` partitions and validated config overrides.
    /// With `validate_only`, checks everything and creates nothing.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        self.create_topic_with_id(name, None, partitions, overrides, validate_only)
    }

    /// `create_topic` with the topic id chosen by the caller (the metadata log's), or a
    /// new one.
    pub fn create_topic_with_id(
        &self,
        name: &str,
        id: Option<Uuid>,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_topic_name(name)?;
        if partitions <= 0 {
            return Err(TopicError::InvalidPartitions(format!("number of partitions must be larger than 0, got {partitions}")));
        }
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!("{partitions} partitions is more than this broker allows (100000)")));
        }
        for (k, v) in &overrides {
            crate::config::log_config::validate_topic_override(k, v)?;
        }
        let _admin = self.admin.lock().unwrap();
        let config = LogConfig::resolve(&self.broker_config(), &overrides)?;
        if self.topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        // Kafka refuses names that collide once '.' and '_' are treated alike (metrics names).
        let folded = name.replace('.', "_");
        if let Some(other) = self.topics().iter().find(|t| t.name.replace('.', "_") == folded) {
            return Err(TopicError::InvalidName(format!(
                "topic '{name}' collides with existing topic '{}' ('.' and '_' collide)",
                other.name
            )));
        }
        self.check_budget(partitions)?;
        let id = id.unwrap_or_else(Uuid::new_v4);
        if self.topic_by_id(id).is_some() {
            return Err(TopicError::AlreadyExists(format!("{name} (topic id {id} is taken)")));
        }
        if validate_only {
            return Ok(Arc::new(Topic { name: name.to_string(), id, overrides, config, partitions: Vec::new() }));
        }
        let parts = self.create_partitions_atomically(name, id, &config, 0..partitions, &overrides)?;
        let topic = Arc::new(Topic { name: name.to_string(), id, overrides, config, partitions: parts });
        let mut map = self.topics.write().unwrap();
        map.by_id.insert(id, topic.clone());
        map.by_name.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Refuses what the open-file and memory-map limits cannot hold (`resource_budget`).
    fn check_budget(&self, partitions: i32) -> Result<(), TopicError> {
        let usage = super::resource_budget::usage()?;
        let unopened: u64 = self.topics().iter().flat_map(|t| t.partitions.iter()).map(|p| p.log().unopened_active_indexes()).sum();
        super::resource_budget::check(&usage, unopened, partitions.max(0) as u64).map_err(TopicError::ResourceLimit)
    }

    /// Makes partitions `range` of topic `name` (and, for a new topic, its config file)
    /// all-or-nothing: on failure everything made is removed again; a crash half-way is
    /// undone by the next start (`finish_interrupted_creations`).
    fn create_partitions_atomically(
        &self,
        name: &str,
        id: Uuid,
        config: &LogConfig,
        range: std::ops::Range<i32>,
        new_topic_overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let marker = self.dir.join(format!("{name}{CREATING}"));
        checkpoint::write_atomically(&marker, range.start.to_string().as_bytes())?;
        let made = (|| {
            if range.start == 0 && !new_topic_overrides.is_empty() {
                write_properties(&self.dir.join(TOPIC_CONFIGS).join(format!("{name}.properties")), new_topic_overrides)?;
            }
            self.open_partitions(name, id, config, range.clone())
        })();
        match made {
            Ok(parts) => {
                std::fs::remove_file(&marker)?;
                std::fs::File::open(&self.dir)?.sync_all()?;
                Ok(parts)
            }
            Err(e) => {
                tracing::warn!(topic = name, partitions = ?range, error = %e, "creating partitions failed; removing what was made");
                if let Err(undo) = Self::remove_partial(&self.dir, name, range.start) {
                    tracing::error!(topic = name, error = %undo, "could not remove partially created partitions; the next start removes them");
                }
                Err(e)
            }
        }
    }

    /// Removes partitions `from..` of `name` (and its config when `from` is 0), then the
    /// `.creating` marker: the undo of an interrupted or failed creation.
    fn remove_partial(dir: &Path, name: &str, from: i32) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().to_string();
            if let Some((topic, p)) = parse_partition_dir(&file_name) {
                if topic == name && p >= from && entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(entry.path())?;
                }
            }
        }
        if from == 0 {
            match std::fs::remove_file(dir.join(TOPIC_CONFIGS).join(format!("{name}.properties"))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::File::open(dir)?.sync_all()?;
        std::fs::remove_file(dir.join(format!("{name}{CREATING}")))?;
        std::fs::File::open(dir)?.sync_all()
    }

    /// Undoes the partition creations a crash interrupted (their `.creating` markers).
    fn finish_interrupted_creations(dir: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().to_string();
            let Some(name) = file_name.strip_suffix(CREATING) else { continue };
            if !entry.file_type()?.is_file() || validate_topic_name(name).is_err() {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())?;
            // Markers are written atomically: one that does not parse was not written by us.
            let Ok(from) = text.trim().parse::<i32>() else {
                tracing::warn!(file = %entry.path().display(), "ignoring a .creating file that does not name a partition");
                continue;
            };
            tracing::warn!(topic = name, from_partition = from, "a topic or partition creation was interrupted; removing its partial partitions");
            Self::remove_partial(dir, name, from)?;
        }
        Ok(())
    }

    fn open_partitions(
        &self,
        name: &str,
        id: Uuid,
        config: &LogConfig,
        range: std::ops::Range<i32>,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let mut out = Vec::new();
        for p in range {
            let pdir = self.dir.join(partition_dir_name(name, p));
            let log = Log::open(
                &pdir,
                config.clone(),
                LoadOptions::fresh(now_ms()),
            )?;
            Self::write_topic_id(&pdir, id)?;
            out.push(Arc::new(Partition::new(name, p, log)));
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(out)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap();
        let topic = self.topic(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is higher than or equal to the requested {count}"
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!("{count} partitions is more than this broker allows")));
        }
        self.check_budget(count - current)?;
        if validate_only {
            return Ok(());
        }
        let mut parts = topic.partitions.clone();
        parts.extend(self.create_partitions_atomically(name, topic.id, &topic.config, current..count, &BTreeMap::new())?);
        self.replace_topic(Topic { partitions: parts, ..Topic::clone(&topic) });
        Ok(())
    }

    /// Replaces a topic's configuration overrides (the whole set) and applies the new
    /// configuration to every partition at once (retention, segment size, max message size…).
    pub fn alter_topic_config(&self, name: &str, overrides: BTreeMap<String, String>, validate_only: bool) -> Result<(), TopicError> {
        for (k, v) in &overrides {
            crate::config::log_config::validate_topic_override(k, v)?;
        }
        let _admin = self.admin.lock().unwrap();
        let config = LogConfig::resolve(&self.broker_config(), &overrides)?;
        let topic = self.topic(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let path = self.dir.join(TOPIC_CONFIGS).join(format!("{name}.properties"));
        if overrides.is_empty() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        } else {
            write_properties(&path, &overrides)?;
        }
        for p in &topic.partitions {
            p.log().set_config(config.clone());
        }
        self.replace_topic(Topic { overrides, config, ..Topic::clone(&topic) });
        tracing::info!(topic = name, "topic configuration changed");
        Ok(())
    }

    fn replace_topic(&self, topic: Topic) {
        let topic = Arc::new(topic);
        let mut map = self.topics.write().unwrap();
        map.by_id.insert(topic.id, topic.clone());
        map.by_name.insert(topic.name.clone(), topic);
    }

    /// Deletes a topic: its directories are renamed `*-delete` at once and removed in the
    /// background; open file handles of in-flight fetches stay valid.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap();
        let topic = {
            let mut map = self.topics.write().unwrap();
            let t = map.by_name.remove(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
            map.by_id.remove(&t.id);
            t
        };
        let tag = topic.id.simple().to_string();
        let mut doomed = Vec::new();
        for p in &topic.partitions {
            let from = self.dir.join(partition_dir_name(name, p.index));
            let to = self.dir.join(format!("{}.{tag}-delete", partition_dir_name(name, p.index)));
            std::fs::rename(&from, &to)?;
            doomed.push(to);
            p.notify();
        }
        let _ = std::fs::remove_file(self.dir.join(TOPIC_CONFIGS).join(format!("{name}.properties")));
        std::fs::File::open(&self.dir)?.sync_all()?;
        std::thread::spawn(move || {
            for d in doomed {
                if let Err(e) = std::fs::remove_dir_all(&d) {
                    tracing::warn!(dir = %d.display(), error = %e, "could not remove a deleted topic's directory");
                }
            }
        });
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Applies retention to every partition; returns the number of segments deleted.
    pub fn apply_retention(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for t in self.topics() {
            for p in &t.partitions {
                let r = p.log().apply_retention(now);
                match r {
                    Ok(n) if n > 0 => {
                        deleted += n;
                        p.notify();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(topic = %t.name, partition = p.index, error = %e, "retention failed; check the log directory"),
                }
            }
        }
        deleted
    }

    /// Writes the recovery-point, log-start and high-watermark checkpoint files. Callers
    /// take turns, each writing a snapshot taken in its turn, so a file never goes back to
    /// older offsets than one already written.
    pub fn checkpoint(&self) -> io::Result<()> {
        let _turn = self.checkpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (mut rp, mut ls, mut hw) = (checkpoint::Offsets::new(), checkpoint::Offsets::new(), checkpoint::Offsets::new());
        for t in self.topics() {
            for p in &t.partitions {
                let log = p.log();
                let key = (t.name.clone(), p.index);
                rp.insert(key.clone(), log.recovery_point());
                ls.insert(key.clone(), log.log_start_offset());
                hw.insert(key, log.next_offset());
            }
        }
        checkpoint::write(&self.dir.join(RECOVERY_POINT), &rp)?;
        checkpoint::write(&self.dir.join(LOG_START), &ls)?;
        checkpoint::write(&self.dir.join(HIGH_WATERMARK), &hw)
    }

    /// Flushes and closes every log, writes the checkpoints and the clean-shutdown marker.
    pub fn shutdown(&self) -> io::Result<()> {
        for t in self.topics() {
            for p in &t.partitions {
                p.log().close()?;
            }
        }
        self.checkpoint()?;
        checkpoint::write_atomically(&self.dir.join(CLEAN_SHUTDOWN), b"")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> LogManager {
        let cfg = BrokerConfig::from_map(BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())])).unwrap();
        LogManager::open(Arc::new(cfg)).unwrap()
    }

    fn partition_dirs(dir: &Path, topic: &str) -> Vec<i32> {
        let mut v: Vec<i32> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                parse_partition_dir(&n).filter(|(t, _)| *t == topic).map(|(_, p)| p)
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_creation_that_fails_half_way_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let logs = open(dir.path());
        // Partition 5's directory cannot be made: a file holds its name.
        std::fs::write(dir.path().join("t-5"), b"in the way").unwrap();
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        assert!(matches!(logs.create_topic("t", 10, configs, false), Err(TopicError::Io(_))));
        assert!(logs.topic("t").is_none());
        assert_eq!(partition_dirs(dir.path(), "t"), Vec::<i32>::new(), "partitions 0-4 were removed again");
        assert!(!dir.path().join("topic-configs/t.properties").exists());
        assert!(!dir.path().join("t.creating").exists());
        // Growing a topic is all-or-nothing too.
        logs.create_topic("g", 2, BTreeMap::new(), false).unwrap();
        std::fs::write(dir.path().join("g-4"), b"in the way").unwrap();
        assert!(logs.create_partitions("g", 6, false).is_err());
        assert_eq!(logs.topic("g").unwrap().partitions.len(), 2);
        assert_eq!(partition_dirs(dir.path(), "g"), vec![0, 1]);
        logs.shutdown().unwrap();
        drop(logs);
        let again = open(dir.path());
        assert!(again.topic("t").is_none());
        assert_eq!(again.topic("g").unwrap().partitions.len(), 2);
    }

    #[test]
    fn a_start_removes_what_an_interrupted_creation_made() {
        let dir = tempfile::tempdir().unwrap();
        let logs = open(dir.path());
        logs.create_topic("grown", 2, BTreeMap::new(), false).unwrap();
        logs.create_topic("half", 3, BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]), false).unwrap();
        logs.shutdown().unwrap();
        drop(logs);
        // As a crash half-way leaves them: the markers, and partitions made before it.
        std::fs::write(dir.path().join("half.creating"), b"0").unwrap();
        std::fs::create_dir(dir.path().join("grown-2")).unwrap();
        std::fs::write(dir.path().join("grown.creating"), b"2").unwrap();
        let again = open(dir.path());
        assert!(again.topic("half").is_none(), "a topic whose creation did not finish is gone");
        assert!(!dir.path().join("topic-configs/half.properties").exists());
        assert_eq!(again.topic("grown").unwrap().partitions.len(), 2, "partitions made by an unfinished growth are gone");
        assert_eq!(partition_dirs(dir.path(), "grown"), vec![0, 1]);
        assert!(!dir.path().join("half.creating").exists() && !dir.path().join("grown.creating").exists());
    }

    #[test]
    fn altered_topic_configs_apply_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let logs = open(dir.path());
        logs.create_topic("t", 2, BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]), false).unwrap();
        let next = BTreeMap::from([("segment.bytes".to_string(), "1048576".to_string())]);
        logs.alter_topic_config("t", next.clone(), false).unwrap();
        assert_eq!(logs.topic("t").unwrap().overrides, next);
        assert_eq!(logs.partition("t", 1).unwrap().log().config().segment_bytes, 1 << 20);
        assert_eq!(logs.partition("t", 1).unwrap().log().config().retention_ms, 604_800_000, "the old override is gone");
        assert!(logs.alter_topic_config("t", BTreeMap::from([("segment.bytes".to_string(), "x".to_string())]), false).is_err());
        logs.shutdown().unwrap();
        drop(logs);
        let again = open(dir.path());
        assert_eq!(again.topic("t").unwrap().overrides, next);
        assert_eq!(again.partition("t", 0).unwrap().log().config().segment_bytes, 1 << 20);
        again.alter_topic_config("t", BTreeMap::new(), false).unwrap();
        assert!(again.topic("t").unwrap().overrides.is_empty());
    }
}
