//! Kafka's `MetadataImage`: the state the metadata log's records add up to — brokers,
//! topics and their partitions, configs, the producer id high-water mark, feature levels.
//!
//! Every node builds the same image by applying the same records in the same order; the
//! request handlers read it (Kafka's `MetadataCache`) and never the log. Applying is
//! deterministic and checks its invariants: a record that does not fit the image (a
//! partition of an unknown topic, a second topic of one name) is refused whole and leaves
//! the image unchanged — the controller checks before it writes, so a refusal here is a
//! bug, reported by the caller.

use super::records::{BrokerEndpoint, MetadataRecord, CONFIG_BROKER, CONFIG_TOPIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub end_points: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetadataImage {
    /// The log offset (quorum index) of the last record applied; 0 before any.
    pub offset: u64,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicImage>,
    pub topic_ids: BTreeMap<String, Uuid>,
    /// (resource type, resource name) → key → value. Stored as a list of entries: JSON
    /// (snapshots, the controller listener) has no tuple keys.
    #[serde(with = "config_entries")]
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// The first producer id no broker has been given yet.
    pub next_producer_id: i64,
    pub features: BTreeMap<String, i16>,
    /// Whether the topics found on disk before the metadata log existed are recorded.
    #[serde(default)]
    pub migrated: bool,
}

mod config_entries {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    type Configs = BTreeMap<(i8, String), BTreeMap<String, String>>;

    pub fn serialize<S: Serializer>(configs: &Configs, s: S) -> Result<S::Ok, S::Error> {
        configs.iter().collect::<Vec<_>>().serialize(s)
    }

    /// A list of entries; or the `{}` of an image written before there were any (JSON
    /// could never hold a non-empty one as a map).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Entries(Vec<((i8, String), BTreeMap<String, String>)>),
        EmptyMap(BTreeMap<String, serde::de::IgnoredAny>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Configs, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Entries(e) => Ok(e.into_iter().collect()),
            Stored::EmptyMap(m) if m.is_empty() => Ok(Configs::new()),
            Stored::EmptyMap(_) => Err(serde::de::Error::custom("configs stored as a map")),
        }
    }
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(self.topic_ids.get(name)?)
    }

    pub fn topic_configs(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.configs.get(&(CONFIG_TOPIC, name.to_string()))
    }

    /// Brokers that may lead partitions (registered and not fenced).
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Applies a batch atomically: every record or none. `offset` is the batch's log index.
    pub fn apply_batch(&mut self, offset: u64, records: &[MetadataRecord]) -> Result<(), String> {
        let mut next = self.clone();
        for r in records {
            next.apply(r)?;
        }
        next.offset = offset;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, record: &MetadataRecord) -> Result<(), String> {
        use MetadataRecord::*;
        match record {
            RegisterBrokerRecord { broker_id, incarnation_id, broker_epoch, end_points, rack, fenced } => {
                if let Some(old) = self.brokers.get(broker_id) {
                    if *broker_epoch <= old.epoch {
                        return Err(format!("broker {broker_id} registered with epoch {broker_epoch}, not above {}", old.epoch));
                    }
                }
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: *broker_epoch,
                        end_points: end_points.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                    },
                );
            }
            UnregisterBrokerRecord { broker_id, broker_epoch } => {
                self.broker_at_epoch(*broker_id, *broker_epoch)?;
                self.brokers.remove(broker_id);
            }
            FenceBrokerRecord { id, epoch } => self.broker_at_epoch(*id, *epoch)?.fenced = true,
            UnfenceBrokerRecord { id, epoch } => self.broker_at_epoch(*id, *epoch)?.fenced = false,
            TopicRecord { name, topic_id } => {
                if self.topic_ids.contains_key(name) || self.topics.contains_key(topic_id) {
                    return Err(format!("topic {name} ({topic_id}) exists already"));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(*topic_id, TopicImage { name: name.clone(), id: *topic_id, partitions: BTreeMap::new() });
            }
            PartitionRecord { partition_id, topic_id, replicas, isr, leader, leader_epoch, partition_epoch } => {
                let topic = self.topics.get_mut(topic_id).ok_or_else(|| format!("partition of unknown topic {topic_id}"))?;
                if *partition_id < 0 || replicas.is_empty() || isr.iter().any(|r| !replicas.contains(r)) {
                    return Err(format!("malformed partition {partition_id} of {}: replicas {replicas:?}, isr {isr:?}", topic.name));
                }
                topic.partitions.insert(
                    *partition_id,
                    PartitionRegistration {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    },
                );
            }
            PartitionChangeRecord { partition_id, topic_id, isr, leader, replicas } => {
                let topic = self.topics.get_mut(topic_id).ok_or_else(|| format!("change of unknown topic {topic_id}"))?;
                let name = topic.name.clone();
                let p = topic.partitions.get_mut(partition_id).ok_or_else(|| format!("change of unknown partition {name}-{partition_id}"))?;
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                if let Some(i) = isr {
                    p.isr = i.clone();
                }
                // A new leader (or none) starts a new leader epoch, as in Kafka.
                if let Some(l) = leader {
                    if *l != p.leader {
                        p.leader = *l;
                        p.leader_epoch += 1;
                    }
                }
                p.partition_epoch += 1;
            }
            ConfigRecord { resource_type, resource_name, name, value } => {
                if *resource_type != CONFIG_TOPIC && *resource_type != CONFIG_BROKER {
                    return Err(format!("config of unknown resource type {resource_type}"));
                }
                let key = (*resource_type, resource_name.clone());
                match value {
                    Some(v) => {
                        self.configs.entry(key).or_default().insert(name.clone(), v.clone());
                    }
                    None => {
                        if let Some(m) = self.configs.get_mut(&key) {
                            m.remove(name);
                            if m.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            RemoveTopicRecord { topic_id } => {
                let t = self.topics.remove(topic_id).ok_or_else(|| format!("removal of unknown topic {topic_id}"))?;
                self.topic_ids.remove(&t.name);
                self.configs.remove(&(CONFIG_TOPIC, t.name));
            }
            ProducerIdsRecord { next_producer_id, .. } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(format!("producer ids may only grow: {next_producer_id} after {}", self.next_producer_id));
                }
                self.next_producer_id = *next_producer_id;
            }
            MetadataMigrationRecord { .. } => self.migrated = true,
            FeatureLevelRecord { name, feature_level } => {
                if *feature_level == 0 {
                    self.features.remove(name);
                } else {
                    self.features.insert(name.clone(), *feature_level);
                }
            }
        }
        Ok(())
    }

    fn broker_at_epoch(&mut self, id: i32, epoch: i64) -> Result<&mut BrokerRegistration, String> {
        match self.brokers.get_mut(&id) {
            Some(b) if b.epoch == epoch => Ok(b),
            Some(b) => Err(format!("broker {id} is at epoch {}, not {epoch}", b.epoch)),
            None => Err(format!("broker {id} is not registered")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: i32, epoch: i64) -> MetadataRecord {
        MetadataRecord::RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: Uuid::from_u128(id as u128),
            broker_epoch: epoch,
            end_points: vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092, security_protocol: 0 }],
            rack: None,
            fenced: true,
        }
    }

    fn topic(name: &str, id: u128, partitions: i32) -> Vec<MetadataRecord> {
        let topic_id = Uuid::from_u128(id);
        let mut v = vec![MetadataRecord::TopicRecord { name: name.into(), topic_id }];
        for p in 0..partitions {
            v.push(MetadataRecord::PartitionRecord {
                partition_id: p,
                topic_id,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        v
    }

    #[test]
    fn brokers_register_and_are_fenced_and_unfenced_at_their_epoch() {
        let mut img = MetadataImage::default();
        img.apply_batch(1, &[register(1, 10)]).unwrap();
        assert!(img.brokers[&1].fenced, "a new registration starts fenced");
        img.apply_batch(2, &[MetadataRecord::UnfenceBrokerRecord { id: 1, epoch: 10 }]).unwrap();
        assert_eq!(img.unfenced_brokers().count(), 1);
        assert!(img.apply_batch(3, &[MetadataRecord::FenceBrokerRecord { id: 1, epoch: 9 }]).is_err(), "a stale epoch changes nothing");
        assert!(img.apply_batch(3, &[register(1, 10)]).is_err(), "a re-registration needs a higher epoch");
        img.apply_batch(3, &[register(1, 11)]).unwrap();
        assert_eq!((img.brokers[&1].epoch, img.offset), (11, 3));
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let mut img = MetadataImage::default();
        img.apply_batch(1, &topic("a", 1, 2)).unwrap();
        let before = img.clone();
        let mut bad = topic("b", 2, 1);
        bad.push(MetadataRecord::TopicRecord { name: "a".into(), topic_id: Uuid::from_u128(3) });
        assert!(img.apply_batch(2, &bad).is_err());
        assert_eq!(img, before, "topic b was not half-created");
        assert!(img.topic("b").is_none());
    }

    #[test]
    fn partition_changes_bump_epochs_and_topic_removal_takes_its_configs() {
        let mut img = MetadataImage::default();
        img.apply_batch(1, &topic("a", 1, 1)).unwrap();
        let id = Uuid::from_u128(1);
        img.apply_batch(
            2,
            &[MetadataRecord::ConfigRecord { resource_type: CONFIG_TOPIC, resource_name: "a".into(), name: "retention.ms".into(), value: Some("1".into()) }],
        )
        .unwrap();
        img.apply_batch(3, &[MetadataRecord::PartitionChangeRecord { partition_id: 0, topic_id: id, isr: Some(vec![1]), leader: None, replicas: None }])
            .unwrap();
        let p = &img.topic("a").unwrap().partitions[&0];
        assert_eq!((p.isr.clone(), p.leader_epoch, p.partition_epoch), (vec![1], 0, 1), "an ISR change keeps the leader epoch");
        img.apply_batch(4, &[MetadataRecord::PartitionChangeRecord { partition_id: 0, topic_id: id, isr: None, leader: Some(2), replicas: None }])
            .unwrap();
        let p = &img.topic("a").unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
        img.apply_batch(5, &[MetadataRecord::RemoveTopicRecord { topic_id: id }]).unwrap();
        assert!(img.topic("a").is_none() && img.topic_configs("a").is_none() && img.topics.is_empty());
    }

    #[test]
    fn an_image_with_configs_round_trips_through_json() {
        let mut img = MetadataImage::default();
        img.apply_batch(1, &topic("a", 1, 1)).unwrap();
        let set = |t: i8, r: &str| MetadataRecord::ConfigRecord { resource_type: t, resource_name: r.into(), name: "k".into(), value: Some("v".into()) };
        img.apply_batch(2, &[set(CONFIG_TOPIC, "a"), set(CONFIG_BROKER, ""), set(CONFIG_BROKER, "1")]).unwrap();
        let json = serde_json::to_vec(&img).expect("snapshots and observers' fetches carry images");
        assert_eq!(serde_json::from_slice::<MetadataImage>(&json).unwrap(), img);
        // An image without configs, as written before they were stored as a list.
        let mut old = serde_json::to_value(MetadataImage::default()).unwrap();
        old["configs"] = serde_json::json!({});
        assert_eq!(serde_json::from_value::<MetadataImage>(old).unwrap(), MetadataImage::default());
    }

    #[test]
    fn producer_id_blocks_only_move_forward() {
        let mut img = MetadataImage::default();
        img.apply_batch(1, &[MetadataRecord::ProducerIdsRecord { broker_id: 1, broker_epoch: 1, next_producer_id: 1000 }]).unwrap();
        assert!(img
            .apply_batch(2, &[MetadataRecord::ProducerIdsRecord { broker_id: 2, broker_epoch: 1, next_producer_id: 1000 }])
            .is_err());
        assert_eq!(img.next_producer_id, 1000);
    }
}
