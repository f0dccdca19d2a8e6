//! Broker configuration under Kafka's own key names.
//!
//! Sources, later ones winning: embedded defaults, a `server.properties`-style file,
//! environment variables (`KAFKA_LOG_DIRS` or `FERRITE_LOG_DIRS` → `log.dirs`, with
//! Confluent's escaping: `__` → `_`, `___` → `-`) and `--override key=value`.
//! Unknown keys are warned about; a value of the wrong type is refused with the key named.

pub mod defs;
pub mod cluster_config;
pub mod cleaner_config;
pub mod group_config;
pub mod txn_config;
pub mod listener;
pub mod log_config;

pub use defs::{ConfigType, BROKER_KEYS, TOPIC_KEYS};
pub use cleaner_config::CleanerConfig;
pub use group_config::GroupConfig;
pub use txn_config::TransactionConfig;
pub use listener::{Listener, ListenerSet};
pub use log_config::{CleanupPolicy, LogConfig, TimestampType};

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot read config file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("malformed line {line} in {path}: expected key=value")]
    Syntax { path: PathBuf, line: usize },
}

/// Where a value came from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set at runtime for this broker (IncrementalAlterConfigs on broker "0"):
    /// DYNAMIC_BROKER_CONFIG (2).
    DynamicBroker,
    /// Set at runtime as the cluster-wide default (broker ""): DYNAMIC_DEFAULT_BROKER_CONFIG (3).
    DynamicDefault,
    /// Set in the file, the environment or an override: STATIC_BROKER_CONFIG (4).
    Static,
    /// The embedded default: DEFAULT_CONFIG (5).
    Default,
}

impl Source {
    /// Kafka's ConfigSource code.
    pub fn code(self) -> i8 {
        match self {
            Source::DynamicBroker => 2,
            Source::DynamicDefault => 3,
            Source::Static => 4,
            Source::Default => 5,
        }
    }
}

/// Broker keys that may change at runtime: the topic defaults (Kafka's dynamic log
/// configs, every broker synonym of a topic key, and the `.hours`/`.minutes` spellings).
pub fn is_dynamic_key(key: &str) -> bool {
    defs::TOPIC_KEYS.iter().any(|t| t.broker_synonym == Some(key))
        || matches!(key, "log.retention.hours" | "log.retention.minutes" | "log.roll.hours")
}

/// The broker's configuration: the explicitly set keys plus typed accessors.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every key set, static and dynamic (dynamic ones win).
    explicit: BTreeMap<String, String>,
    /// The keys set statically (file, environment, --override).
    static_keys: BTreeMap<String, String>,
    /// Keys set at runtime: for this broker, and as the cluster-wide default.
    pub dynamic_broker: BTreeMap<String, String>,
    pub dynamic_default: BTreeMap<String, String>,
    pub node_id: i32,
    pub listeners: ListenerSet,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    /// `queued.max.request.bytes`; `None` when unbounded (-1).
    pub queued_max_request_bytes: Option<usize>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: std::collections::HashMap<std::net::IpAddr, usize>,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms` and `log.flush.start.offset.checkpoint.interval.ms`.
    pub offset_checkpoint_interval_ms: u64,
    pub start_offset_checkpoint_interval_ms: u64,
    pub offsets_topic_num_partitions: i32,
    pub group: GroupConfig,
    pub txn: TransactionConfig,
    pub cleaner: CleanerConfig,
    /// The topic-level defaults every topic starts from.
    pub log: LogConfig,
    /// Roles, the controller quorum, timeouts (`cluster_config`).
    pub cluster: cluster_config::ClusterConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig::from_map(BTreeMap::new()).expect("embedded defaults are valid")
    }
}

impl BrokerConfig {
    /// Builds the configuration from explicitly set keys (validated here).
    pub fn from_map(explicit: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        for (key, value) in &explicit {
            match defs::broker_key(key) {
                Some(def) => def.kind.validate(value).map_err(|reason| ConfigError::Invalid {
                    key: key.clone(),
                    reason,
                })?,
                None if defs::topic_key(key).is_some() => {
                    tracing::debug!(key, "topic-level key set at broker level; used as the topic default")
                }
                None => tracing::warn!(key, "unknown configuration key ignored"),
            }
        }
        let mut cfg = BrokerConfig {
            static_keys: explicit.clone(),
            dynamic_broker: BTreeMap::new(),
            dynamic_default: BTreeMap::new(),
            explicit,
            node_id: 0,
            listeners: ListenerSet::default(),
            log_dir: PathBuf::new(),
            num_partitions: 0,
            default_replication_factor: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            socket_request_max_bytes: 0,
            connections_max_idle_ms: 0,
            queued_max_request_bytes: None,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_connections_per_ip_overrides: Default::default(),
            retention_check_interval_ms: 0,
            flush_scheduler_interval_ms: 0,
            offset_checkpoint_interval_ms: 0,
            start_offset_checkpoint_interval_ms: 0,
            offsets_topic_num_partitions: 50,
            group: GroupConfig::placeholder(),
            txn: TransactionConfig::placeholder(),
            cleaner: CleanerConfig::placeholder(),
            log: LogConfig::default(),
            cluster: cluster_config::ClusterConfig::placeholder(),
        };
        cfg.node_id = match cfg.explicit.get("broker.id") {
            Some(_) if !cfg.explicit.contains_key("node.id") => cfg.int("broker.id")? as i32,
            _ => cfg.int("node.id")? as i32,
        };
        cfg.listeners = ListenerSet::parse(
            &cfg.get("listeners").unwrap_or_default(),
            cfg.explicit.get("advertised.listeners").map(String::as_str),
        )
        .map_err(|reason| ConfigError::Invalid { key: "listeners".into(), reason })?;
        listener::check_security_protocols(&cfg.listeners, cfg.explicit.get("listener.security.protocol.map").map(String::as_str))
            .map_err(|reason| ConfigError::Invalid { key: "listeners".into(), reason })?;
        let dir = cfg
            .explicit
            .get("log.dirs")
            .or_else(|| cfg.explicit.get("log.dir"))
            .cloned()
            .unwrap_or_else(|| "./data".into());
        if dir.contains(',') {
            return Err(ConfigError::Invalid {
                key: "log.dirs".into(),
                reason: "only one log directory is supported".into(),
            });
        }
        cfg.log_dir = PathBuf::from(dir);
        cfg.num_partitions = cfg.positive("num.partitions")? as i32;
        cfg.default_replication_factor = cfg.int("default.replication.factor")? as i16;
        cfg.auto_create_topics = cfg.bool("auto.create.topics.enable")?;
        cfg.delete_topic_enable = cfg.bool("delete.topic.enable")?;
        cfg.socket_request_max_bytes = cfg.positive("socket.request.max.bytes")? as usize;
        cfg.connections_max_idle_ms = cfg.positive("connections.max.idle.ms")? as u64;
        cfg.queued_max_request_bytes = match cfg.int("queued.max.request.bytes")? {
            -1 => None,
            n if n > 0 => Some((n as u64).min(u32::MAX as u64) as usize),
            n => return Err(ConfigError::Invalid { key: "queued.max.request.bytes".into(), reason: format!("must be positive or -1, got {n}") }),
        };
        cfg.max_connections = cfg.positive("max.connections")? as usize;
        cfg.max_connections_per_ip = cfg.int("max.connections.per.ip")?.max(0) as usize;
        cfg.max_connections_per_ip_overrides =
            listener::parse_overrides(&cfg.get("max.connections.per.ip.overrides").unwrap_or_default())
                .map_err(|reason| ConfigError::Invalid { key: "max.connections.per.ip.overrides".into(), reason })?;
        cfg.retention_check_interval_ms = cfg.positive("log.retention.check.interval.ms")? as u64;
        cfg.flush_scheduler_interval_ms = cfg.positive("log.flush.scheduler.interval.ms")? as u64;
        cfg.offset_checkpoint_interval_ms = cfg.positive("log.flush.offset.checkpoint.interval.ms")? as u64;
        cfg.start_offset_checkpoint_interval_ms = cfg.positive("log.flush.start.offset.checkpoint.interval.ms")? as u64;
        cfg.offsets_topic_num_partitions = cfg.positive("offsets.topic.num.partitions")? as i32;
        cfg.log = LogConfig::resolve(&cfg, &BTreeMap::new())?;
        cfg.group = GroupConfig::from_broker(&cfg)?;
        cfg.txn = TransactionConfig::from_broker(&cfg)?;
        cfg.cleaner = CleanerConfig::from_broker(&cfg)?;
        cfg.cluster = cluster_config::ClusterConfig::from_broker(&cfg)?;
        Ok(cfg)
    }

    /// Reads a `server.properties`-style file: `key=value` (or `key: value`), `#`/`!` comments.
    pub fn read_properties(path: &std::path::Path) -> Result<BTreeMap<String, String>, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        let mut out = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or(ConfigError::Syntax { path: path.to_owned(), line: i + 1 })?;
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(out)
    }

    /// Keys taken from `KAFKA_*` and `FERRITE_*` environment variables.
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in vars {
            let rest = match name.strip_prefix("FERRITE_").or_else(|| name.strip_prefix("KAFKA_")) {
                Some(r) if !r.is_empty() => r,
                _ => continue,
            };
            // Variables that configure tooling, not the broker (as Confluent's images skip them).
            if matches!(rest, "OPTS" | "HEAP_OPTS" | "JMX_OPTS" | "LOG4J_OPTS" | "LOG" | "BIN" | "CONFIG") {
                continue;
            }
            let key = rest
                .to_ascii_lowercase()
                .replace("___", "\u{1}")
                .replace("__", "\u{2}")
                .replace('_', ".")
                .replace('\u{1}', "-")
                .replace('\u{2}', "_");
            out.insert(key, value);
        }
        out
    }

    /// The explicitly set value, or the embedded default; `None` for a null default.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.explicit.get(key) {
            return Some(v.clone());
        }
        defs::broker_key(key).and_then(|d| d.default.map(str::to_string))
    }

    /// The value and where it came from, for DescribeConfigs.
    pub fn describe(&self, key: &str) -> (Option<String>, Source) {
        if let Some(v) = self.dynamic_broker.get(key) {
            return (Some(v.clone()), Source::DynamicBroker);
        }
        if let Some(v) = self.dynamic_default.get(key) {
            return (Some(v.clone()), Source::DynamicDefault);
        }
        match self.static_keys.get(key) {
            Some(v) => (Some(v.clone()), Source::Static),
            None => (self.get(key), Source::Default),
        }
    }

    /// This configuration with runtime overrides layered over the static keys (for this
    /// broker over the cluster-wide default). Only `is_dynamic_key` keys may change.
    pub fn with_dynamic(&self, default: BTreeMap<String, String>, broker: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        if let Some(k) = default.keys().chain(broker.keys()).find(|k| !is_dynamic_key(k)) {
            return Err(ConfigError::Invalid {
                key: k.clone(),
                reason: "cannot be changed at runtime; set it in the config file, KAFKA_* variables or --override, and restart".into(),
            });
        }
        let mut merged = self.static_keys.clone();
        merged.extend(default.clone());
        merged.extend(broker.clone());
        let mut cfg = BrokerConfig::from_map(merged)?;
        cfg.static_keys = self.static_keys.clone();
        cfg.dynamic_default = default;
        cfg.dynamic_broker = broker;
        Ok(cfg)
    }

    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains_key(key)
    }

    fn int(&self, key: &str) -> Result<i64, ConfigError> {
        let raw = self.get(key).unwrap_or_default();
        raw.trim().parse::<i64>().map_err(|_| ConfigError::Invalid {
            key: key.into(),
            reason: format!("expected an integer, got {raw:?}"),
        })
    }

    fn positive(&self, key: &str) -> Result<i64, ConfigError> {
        let v = self.int(key)?;
        if v <= 0 {
            return Err(ConfigError::Invalid { key: key.into(), reason: format!("must be positive, got {v}") });
        }
        Ok(v)
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        let raw = self.get(key).unwrap_or_default();
        raw.trim().parse::<bool>().map_err(|_| ConfigError::Invalid {
            key: key.into(),
            reason: format!("expected true or false, got {raw:?}"),
        })
    }

    /// The broker-level value a topic key falls back to, after Kafka's derivations
    /// (`log.retention.hours` → ms, `log.roll.hours` → ms, unset flush.ms → never).
    pub fn topic_default(&self, topic_key: &str) -> String {
        let def = defs::topic_key(topic_key).expect("known topic key");
        // A topic-level key written in the broker config acts as its default (the issue's
        // `retention.ms` / `retention.bytes` spelling).
        if let Some(v) = self.explicit.get(topic_key) {
            return v.clone();
        }
        let ms_from = |ms: &str, minutes: Option<&str>, hours: &str| -> String {
            if let Some(v) = self.explicit.get(ms) {
                return v.clone();
            }
            if let Some(m) = minutes.and_then(|m| self.explicit.get(m)) {
                return (m.trim().parse::<i64>().unwrap_or(0).saturating_mul(60_000)).to_string();
            }
            let h = self.get(hours).unwrap_or_default();
            (h.trim().parse::<i64>().unwrap_or(0).saturating_mul(3_600_000)).to_string()
        };
        match topic_key {
            "retention.ms" => ms_from("log.retention.ms", Some("log.retention.minutes"), "log.retention.hours"),
            "segment.ms" => ms_from("log.roll.ms", None, "log.roll.hours"),
            _ => def
                .broker_synonym
                .and_then(|s| self.get(s))
                .unwrap_or_else(|| def.default.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_kafka_keys() {
        let m = BrokerConfig::from_env(
            [
                ("KAFKA_ADVERTISED_LISTENERS".to_string(), "PLAINTEXT://h:1".to_string()),
                ("FERRITE_LOG_DIRS".into(), "/d".into()),
                ("KAFKA_HEAP_OPTS".into(), "-Xmx1g".into()),
                ("KAFKA_SOME__UNDERSCORE".into(), "x".into()),
                ("PATH".into(), "/bin".into()),
            ]
            .into_iter(),
        );
        assert_eq!(m.get("advertised.listeners").unwrap(), "PLAINTEXT://h:1");
        assert_eq!(m.get("log.dirs").unwrap(), "/d");
        assert_eq!(m.get("some_underscore").unwrap(), "x");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn invalid_value_names_the_key() {
        let err = BrokerConfig::from_map([("log.segment.bytes".to_string(), "big".to_string())].into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.segment.bytes"), "{err}");
    }

    #[test]
    fn retention_hours_derive_retention_ms() {
        let c = BrokerConfig::from_map([("log.retention.hours".to_string(), "2".to_string())].into()).unwrap();
        assert_eq!(c.log.retention_ms, 7_200_000);
        let c = BrokerConfig::from_map([("retention.ms".to_string(), "5".to_string())].into()).unwrap();
        assert_eq!(c.log.retention_ms, 5);
    }
}
