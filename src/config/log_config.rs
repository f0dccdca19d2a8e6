//! The effective configuration of one topic's logs (Kafka's `LogConfig`): topic overrides
//! layered over the broker's defaults, already parsed into the types the storage uses.

use kafka_protocol::records::Compression;
use super::{defs, BrokerConfig, ConfigError};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec batches are stored with; `None` (`producer`) keeps
    /// each batch's own.
    pub compression_type: Option<Compression>,
    /// `min.insync.replicas`: above 1, acks=all cannot be met by one node.
    pub min_insync_replicas: i64,
}

/// Parses `compression.type`.
pub fn topic_codec(value: &str) -> Result<Option<Compression>, String> {
    Ok(Some(match value.trim() {
        "producer" => return Ok(None),
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => return Err(format!("unknown compression type {other:?}; use producer, uncompressed, gzip, snappy, lz4 or zstd")),
    }))
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy { delete: true, compact: false },
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            compression_type: None,
            min_insync_replicas: 1,
        }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), reason: reason.into() }
}

/// Validates one topic-level override (CreateTopics / AlterConfigs).
pub fn validate_topic_override(key: &str, value: &str) -> Result<(), ConfigError> {
    let def = defs::topic_key(key).ok_or_else(|| invalid(key, "unknown topic configuration"))?;
    def.kind.validate(value).map_err(|r| invalid(key, r))?;
    let mut one = BTreeMap::new();
    one.insert(key.to_string(), value.to_string());
    LogConfig::resolve(&BrokerConfig::default(), &one).map(|_| ())
}

impl LogConfig {
    /// Layers `overrides` (topic-level keys) over the broker's defaults.
    pub fn resolve(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let value = |key: &str| -> String {
            overrides.get(key).cloned().unwrap_or_else(|| broker.topic_default(key))
        };
        let long = |key: &str| -> Result<i64, ConfigError> {
            let v = value(key);
            v.trim().parse::<i64>().map_err(|_| invalid(key, format!("expected an integer, got {v:?}")))
        };
        let positive = |key: &str| -> Result<i64, ConfigError> {
            let v = long(key)?;
            if v <= 0 {
                return Err(invalid(key, format!("must be positive, got {v}")));
            }
            Ok(v)
        };
        let double = |key: &str| -> Result<f64, ConfigError> {
            let v = value(key);
            v.trim().parse::<f64>().map_err(|_| invalid(key, format!("expected a number, got {v:?}")))
        };
        let timestamp_type = match value("message.timestamp.type").trim() {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => return Err(invalid("message.timestamp.type", format!("must be CreateTime or LogAppendTime, got {other:?}"))),
        };
        let mut cleanup_policy = CleanupPolicy::default();
        for p in value("cleanup.policy").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p {
                "delete" => cleanup_policy.delete = true,
                "compact" => cleanup_policy.compact = true,
                other => return Err(invalid("cleanup.policy", format!("unknown policy {other:?}"))),
            }
        }
        let segment_bytes = positive("segment.bytes")?;
        if segment_bytes < 14 {
            return Err(invalid("segment.bytes", "must be at least 14 bytes"));
        }
        let segment_index_bytes = positive("segment.index.bytes")?;
        if segment_index_bytes < 8 {
            return Err(invalid("segment.index.bytes", "must hold at least one entry (8 bytes)"));
        }
        Ok(LogConfig {
            segment_bytes: segment_bytes as u64,
            segment_ms: positive("segment.ms")?,
            segment_index_bytes: segment_index_bytes as u64,
            index_interval_bytes: long("index.interval.bytes")?.max(0) as u64,
            retention_ms: long("retention.ms")?,
            retention_bytes: long("retention.bytes")?,
            flush_messages: positive("flush.messages")?,
            flush_ms: positive("flush.ms")?,
            max_message_bytes: positive("max.message.bytes")?.min(i32::MAX as i64) as usize,
            timestamp_type,
            cleanup_policy,
            delete_retention_ms: long("delete.retention.ms")?,
            min_cleanable_dirty_ratio: double("min.cleanable.dirty.ratio")?,
            min_compaction_lag_ms: long("min.compaction.lag.ms")?,
            max_compaction_lag_ms: positive("max.compaction.lag.ms")?,
            timestamp_before_max_ms: long("message.timestamp.before.max.ms")?,
            timestamp_after_max_ms: long("message.timestamp.after.max.ms")?,
            compression_type: topic_codec(&value("compression.type")).map_err(|r| invalid("compression.type", r))?,
            min_insync_replicas: positive("min.insync.replicas")?,
        })
    }
}
