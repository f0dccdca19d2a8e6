//! The transaction coordinator's settings (Kafka's `TransactionConfig`), parsed once from
//! the broker configuration.

use super::{BrokerConfig, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionConfig {
    pub state_log_partitions: i32,
    pub state_log_segment_bytes: i64,
    pub state_log_replication_factor: i16,
    /// The largest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i64,
    /// A transactional id unused this long (and not in a transaction) is forgotten.
    pub id_expiration_ms: i64,
    /// How often open transactions are checked against their timeout.
    pub abort_check_interval_ms: i64,
    /// How often expired transactional ids are looked for.
    pub expiry_check_interval_ms: i64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        BrokerConfig::default().txn
    }
}

impl TransactionConfig {
    pub(super) fn placeholder() -> Self {
        TransactionConfig {
            state_log_partitions: 0,
            state_log_segment_bytes: 0,
            state_log_replication_factor: 0,
            max_timeout_ms: 0,
            id_expiration_ms: 0,
            abort_check_interval_ms: 0,
            expiry_check_interval_ms: 0,
        }
    }

    pub fn from_broker(cfg: &BrokerConfig) -> Result<Self, ConfigError> {
        let positive = |key: &str| -> Result<i64, ConfigError> {
            let raw = cfg.get(key).unwrap_or_default();
            match raw.trim().parse::<i64>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(ConfigError::Invalid { key: key.into(), reason: format!("expected a positive integer, got {raw:?}") }),
            }
        };
        Ok(TransactionConfig {
            state_log_partitions: positive("transaction.state.log.num.partitions")?.min(i32::MAX as i64) as i32,
            state_log_segment_bytes: positive("transaction.state.log.segment.bytes")?,
            state_log_replication_factor: positive("transaction.state.log.replication.factor")?.min(i16::MAX as i64) as i16,
            max_timeout_ms: positive("transaction.max.timeout.ms")?,
            id_expiration_ms: positive("transactional.id.expiration.ms")?,
            abort_check_interval_ms: positive("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
            expiry_check_interval_ms: positive("transaction.remove.expired.transaction.cleanup.interval.ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn defaults_are_kafkas() {
        let t = TransactionConfig::default();
        assert_eq!((t.state_log_partitions, t.max_timeout_ms), (50, 900_000));
        assert_eq!(t.id_expiration_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(t.abort_check_interval_ms, 10_000);
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = BTreeMap::from([("transaction.max.timeout.ms".to_string(), "0".to_string())]);
        let err = BrokerConfig::from_map(bad).unwrap_err().to_string();
        assert!(err.contains("transaction.max.timeout.ms"), "{err}");
    }
}
