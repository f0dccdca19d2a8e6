//! The log cleaner's broker settings (Kafka's `CleanerConfig`), parsed once from the
//! broker configuration. Per-topic settings (`min.cleanable.dirty.ratio`,
//! `delete.retention.ms`, `min/max.compaction.lag.ms`) live in `LogConfig`.

use super::{BrokerConfig, ConfigError};

#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    pub enable: bool,
    pub threads: usize,
    /// Memory for one pass's offset map (`log.cleaner.dedupe.buffer.size`, split over the threads).
    pub dedupe_buffer_size: usize,
    pub io_max_bytes_per_second: f64,
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        BrokerConfig::default().cleaner
    }
}

impl CleanerConfig {
    pub(super) fn placeholder() -> Self {
        CleanerConfig { enable: false, threads: 0, dedupe_buffer_size: 0, io_max_bytes_per_second: 0.0, backoff_ms: 0 }
    }

    pub fn from_broker(cfg: &BrokerConfig) -> Result<Self, ConfigError> {
        let raw = |key: &str| cfg.get(key).unwrap_or_default().trim().to_string();
        let invalid = |key: &str, reason: String| ConfigError::Invalid { key: key.into(), reason };
        let positive = |key: &str| -> Result<i64, ConfigError> {
            match raw(key).parse::<i64>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(invalid(key, format!("expected a positive integer, got {:?}", raw(key)))),
            }
        };
        let enable = match raw("log.cleaner.enable").to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => return Err(invalid("log.cleaner.enable", format!("expected true or false, got {other:?}"))),
        };
        let rate = raw("log.cleaner.io.max.bytes.per.second");
        let io_max_bytes_per_second = match rate.parse::<f64>() {
            Ok(v) if v > 0.0 => v,
            _ => return Err(invalid("log.cleaner.io.max.bytes.per.second", format!("expected a positive number, got {rate:?}"))),
        };
        Ok(CleanerConfig {
            enable,
            threads: positive("log.cleaner.threads")?.min(64) as usize,
            dedupe_buffer_size: positive("log.cleaner.dedupe.buffer.size")? as usize,
            io_max_bytes_per_second,
            backoff_ms: positive("log.cleaner.backoff.ms")? as u64,
        })
    }
}
