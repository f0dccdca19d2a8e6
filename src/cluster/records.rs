//! The metadata log's records, named and shaped as KRaft's (`RegisterBrokerRecord`,
//! `TopicRecord`, `PartitionRecord`, …; Kafka's `metadata/src/main/resources/common/metadata`)
//! so that a Kafka engineer reading the log recognises every entry. They are written to the
//! log as JSON inside our quorum's entries, not in Kafka's binary framing: no Kafka tool
//! reads another implementation's metadata log, and JSON keeps the log readable with `jq`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A listener as a broker registers it (Kafka's `BrokerEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// `ConfigRecord.resource_type`: Kafka's `ConfigResource.Type` codes.
pub const CONFIG_TOPIC: i8 = 2;
pub const CONFIG_BROKER: i8 = 4;

/// Kafka's `PartitionRecord.leader` for a partition with no leader.
pub const NO_LEADER: i32 = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    RegisterBrokerRecord {
        broker_id: i32,
        incarnation_id: Uuid,
        broker_epoch: i64,
        end_points: Vec<BrokerEndpoint>,
        rack: Option<String>,
        fenced: bool,
    },
    UnregisterBrokerRecord {
        broker_id: i32,
        broker_epoch: i64,
    },
    FenceBrokerRecord {
        id: i32,
        epoch: i64,
    },
    UnfenceBrokerRecord {
        id: i32,
        epoch: i64,
    },
    TopicRecord {
        name: String,
        topic_id: Uuid,
    },
    PartitionRecord {
        partition_id: i32,
        topic_id: Uuid,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A change to one partition; absent fields are unchanged (Kafka's tagged fields).
    PartitionChangeRecord {
        partition_id: i32,
        topic_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
    },
    /// A config key set (`value` Some) or removed (None) on a topic or broker resource;
    /// `resource_name` "" with `CONFIG_BROKER` is the cluster-wide default.
    ConfigRecord {
        resource_type: i8,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    RemoveTopicRecord {
        topic_id: Uuid,
    },
    /// The next producer id block starts at `next_producer_id`; `broker_id` got the one before.
    ProducerIdsRecord {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
    FeatureLevelRecord {
        name: String,
        feature_level: i16,
    },
    /// Ferrite's own (Kafka's nearest is `ZkMigrationStateRecord`): the topics a node had on
    /// disk before it had a metadata log are recorded; from here on a topic on disk that the
    /// log does not know is a leftover of a deletion.
    MetadataMigrationRecord {
        node_id: i32,
    },
}

/// What the quorum agrees on in one step: records applied together or not at all
/// (Kafka's atomic record batches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

impl std::fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metadata records", self.records.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_with_kafka_record_names() {
        let r = MetadataRecord::TopicRecord { name: "t".into(), topic_id: Uuid::nil() };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""type":"TopicRecord""#), "{json}");
        assert_eq!(serde_json::from_str::<MetadataRecord>(&json).unwrap(), r);
        let change = MetadataRecord::PartitionChangeRecord { partition_id: 0, topic_id: Uuid::nil(), isr: None, leader: Some(2), replicas: None };
        let json = serde_json::to_string(&change).unwrap();
        assert!(!json.contains("isr"), "unchanged fields are left out: {json}");
        assert_eq!(serde_json::from_str::<MetadataRecord>(&json).unwrap(), change);
    }
}
