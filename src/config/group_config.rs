//! The group coordinator's settings (Kafka's `GroupConfig` / `OffsetConfig`), parsed once
//! from the broker configuration into the types the coordinator uses.

use super::{BrokerConfig, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i64,
    pub max_session_timeout_ms: i64,
    pub max_size: usize,
    pub offsets_topic_partitions: i32,
    pub offsets_topic_segment_bytes: i64,
    pub offsets_topic_replication_factor: i16,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    /// Whether KIP-848 consumer groups (ConsumerGroupHeartbeat) are served.
    pub consumer_protocol: bool,
    pub consumer_session_timeout_ms: i64,
    pub consumer_heartbeat_interval_ms: i64,
    /// Server-side assignors by name; the first is the default.
    pub consumer_assignors: Vec<String>,
    pub consumer_max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        BrokerConfig::default().group
    }
}

impl GroupConfig {
    /// A value to fill a `BrokerConfig` with before its keys are parsed.
    pub(super) fn placeholder() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 0,
            max_session_timeout_ms: 0,
            max_size: 0,
            offsets_topic_partitions: 0,
            offsets_topic_segment_bytes: 0,
            offsets_topic_replication_factor: 0,
            offsets_retention_ms: 0,
            offsets_retention_check_interval_ms: 0,
            offset_metadata_max_bytes: 0,
            consumer_protocol: false,
            consumer_session_timeout_ms: 0,
            consumer_heartbeat_interval_ms: 0,
            consumer_assignors: Vec::new(),
            consumer_max_size: 0,
        }
    }

    pub fn from_broker(cfg: &BrokerConfig) -> Result<Self, ConfigError> {
        let int = |key: &str| -> Result<i64, ConfigError> {
            let raw = cfg.get(key).unwrap_or_default();
            raw.trim().parse::<i64>().map_err(|_| ConfigError::Invalid { key: key.into(), reason: format!("expected an integer, got {raw:?}") })
        };
        let non_negative = |key: &str| -> Result<i64, ConfigError> {
            let v = int(key)?;
            if v < 0 {
                return Err(ConfigError::Invalid { key: key.into(), reason: format!("must not be negative, got {v}") });
            }
            Ok(v)
        };
        let list = |key: &str| -> Vec<String> {
            cfg.get(key).unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let protocols = list("group.coordinator.rebalance.protocols");
        if let Some(bad) = protocols.iter().find(|p| !matches!(p.as_str(), "classic" | "consumer")) {
            return Err(ConfigError::Invalid {
                key: "group.coordinator.rebalance.protocols".into(),
                reason: format!("unknown protocol {bad:?}; use classic and/or consumer"),
            });
        }
        let assignors = list("group.consumer.assignors");
        if let Some(bad) = assignors.iter().find(|a| !matches!(a.as_str(), "uniform" | "range")) {
            return Err(ConfigError::Invalid {
                key: "group.consumer.assignors".into(),
                reason: format!("unknown assignor {bad:?}; Ferrite has uniform and range"),
            });
        }
        let gc = GroupConfig {
            initial_rebalance_delay_ms: non_negative("group.initial.rebalance.delay.ms")?,
            min_session_timeout_ms: non_negative("group.min.session.timeout.ms")?,
            max_session_timeout_ms: non_negative("group.max.session.timeout.ms")?,
            max_size: non_negative("group.max.size")?.max(1) as usize,
            offsets_topic_partitions: cfg.offsets_topic_num_partitions,
            offsets_topic_segment_bytes: non_negative("offsets.topic.segment.bytes")?.max(1),
            offsets_topic_replication_factor: non_negative("offsets.topic.replication.factor")?.clamp(1, i16::MAX as i64) as i16,
            offsets_retention_ms: non_negative("offsets.retention.minutes")?.saturating_mul(60_000),
            offsets_retention_check_interval_ms: non_negative("offsets.retention.check.interval.ms")?.max(1),
            offset_metadata_max_bytes: non_negative("offset.metadata.max.bytes")? as usize,
            consumer_protocol: protocols.iter().any(|p| p == "consumer"),
            consumer_session_timeout_ms: non_negative("group.consumer.session.timeout.ms")?,
            consumer_heartbeat_interval_ms: non_negative("group.consumer.heartbeat.interval.ms")?,
            consumer_assignors: if assignors.is_empty() { vec!["uniform".into()] } else { assignors },
            consumer_max_size: non_negative("group.consumer.max.size")?.max(1) as usize,
        };
        if gc.min_session_timeout_ms > gc.max_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "group.min.session.timeout.ms".into(),
                reason: "must not exceed group.max.session.timeout.ms".into(),
            });
        }
        Ok(gc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn defaults_are_kafkas() {
        let g = GroupConfig::default();
        assert_eq!(g.initial_rebalance_delay_ms, 3000);
        assert_eq!(g.min_session_timeout_ms, 6000);
        assert_eq!(g.offsets_topic_partitions, 50);
        assert_eq!(g.offsets_retention_ms, 7 * 24 * 3600 * 1000);
        assert!(g.consumer_protocol);
        assert_eq!(g.consumer_assignors, vec!["uniform", "range"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = BTreeMap::from([("group.consumer.assignors".to_string(), "sticky".to_string())]);
        let err = BrokerConfig::from_map(bad).unwrap_err().to_string();
        assert!(err.contains("group.consumer.assignors"), "{err}");
    }
}
