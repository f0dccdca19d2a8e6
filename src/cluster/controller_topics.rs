//! The active controller's topic decisions: which records a new topic, more partitions, a
//! deletion or a config change become (Kafka's `ReplicationControlManager` and
//! `ConfigurationControlManager`). Replicas are placed over the unfenced brokers.

use super::controller::{ControllerError, QuorumController};
use super::image::MetadataImage;
use super::placement::{place, Candidate};
use super::records::{MetadataRecord, CONFIG_BROKER, CONFIG_TOPIC};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A topic found on a node's disk but not in the metadata log (a data directory from
/// before the metadata log, or an internal topic a coordinator made), with all its
/// partitions on `broker`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AdoptedTopic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

fn seed() -> u64 {
    let b = Uuid::new_v4().into_bytes();
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

fn config_records(name: &str, old: Option<&BTreeMap<String, String>>, new: &BTreeMap<String, String>) -> Vec<MetadataRecord> {
    resource_config_records(CONFIG_TOPIC, name, old, new)
}

/// `ConfigRecord`s that turn `old` into `new` for one resource.
fn resource_config_records(kind: i8, name: &str, old: Option<&BTreeMap<String, String>>, new: &BTreeMap<String, String>) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (k, v) in new {
        if old.and_then(|o| o.get(k)) != Some(v) {
            out.push(MetadataRecord::ConfigRecord { resource_type: kind, resource_name: name.into(), name: k.clone(), value: Some(v.clone()) });
        }
    }
    for k in old.into_iter().flat_map(|o| o.keys()) {
        if !new.contains_key(k) {
            out.push(MetadataRecord::ConfigRecord { resource_type: kind, resource_name: name.into(), name: k.clone(), value: None });
        }
    }
    out
}

fn partition_records(topic_id: Uuid, first: i32, placed: Vec<Vec<i32>>) -> impl Iterator<Item = MetadataRecord> {
    placed.into_iter().enumerate().map(move |(i, replicas)| MetadataRecord::PartitionRecord {
        partition_id: first + i as i32,
        topic_id,
        isr: replicas.clone(),
        leader: replicas[0],
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

/// Kafka's checks of a manual assignment: every partition has replicas, none twice, all
/// of one count, every broker registered.
fn check_assignments(image: &MetadataImage, assignments: &[Vec<i32>]) -> Result<(), ControllerError> {
    let bad = |m: String| Err(ControllerError::InvalidAssignment(m));
    let rf = assignments.first().map_or(0, |a| a.len());
    for (p, replicas) in assignments.iter().enumerate() {
        if replicas.is_empty() {
            return bad(format!("partition {p} has no replicas"));
        }
        if replicas.len() != rf {
            return bad(format!("partition {p} has {} replicas, partition 0 has {rf}: all must have the same count", replicas.len()));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() {
            return bad(format!("partition {p} names a broker twice: {replicas:?}"));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return bad(format!("broker {b} of partition {p}'s assignment is not registered"));
        }
    }
    Ok(())
}

fn candidates(image: &MetadataImage) -> Vec<Candidate> {
    image.unfenced_brokers().map(|b| Candidate { id: b.id, rack: b.rack.clone() }).collect()
}

impl QuorumController {
    /// Writes a new topic: `TopicRecord`, a `PartitionRecord` per partition (replicas
    /// placed over the unfenced brokers, or as `assignments` give them; the first leads,
    /// all in the ISR) and its configs, as one batch. Returns the batch's offset.
    pub async fn create_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        rf: i16,
        assignments: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
    ) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        if image.topic(name).is_some() || image.topics.contains_key(&id) {
            return Err(ControllerError::TopicExists(name.to_string()));
        }
        // Decided here, not only by the broker that took the request: two brokers may
        // each have checked one of two colliding names at the same moment.
        let folded = name.replace('.', "_");
        if let Some(other) = image.topics.values().find(|t| t.name.replace('.', "_") == folded) {
            return Err(ControllerError::InvalidTopic(format!("topic '{name}' collides with existing topic '{}' ('.' and '_' collide)", other.name)));
        }
        let placed = if assignments.is_empty() {
            place(&candidates(&image), 0, partitions, rf, seed()).map_err(|e| ControllerError::Placement(e.to_string()))?
        } else {
            check_assignments(&image, &assignments)?;
            assignments
        };
        let mut records = vec![MetadataRecord::TopicRecord { name: name.to_string(), topic_id: id }];
        records.extend(partition_records(id, 0, placed));
        records.extend(config_records(name, None, &configs));
        Ok(self.quorum.append(records).await?)
    }

    /// Grows a topic to `count` partitions, the new ones placed like the first.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        let topic = image.topic(name).ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            // Another broker's growth may have come first.
            let why = if count == current { format!("topic {name} already has {current} partitions") } else { format!("topic {name} has {current} partitions, more than the {count} asked for") };
            return Err(ControllerError::InvalidPartitions(why));
        }
        let rf = topic.partitions.values().next().map_or(1, |p| p.replicas.len() as i16);
        let placed = place(&candidates(&image), current, count - current, rf, seed()).map_err(|e| ControllerError::Placement(e.to_string()))?;
        let records: Vec<_> = partition_records(topic.id, current, placed).collect();
        Ok(self.quorum.append(records).await?)
    }

    /// Removes a topic (`RemoveTopicRecord`); with `id`, only that incarnation of the name.
    pub async fn delete_topic(&self, name: &str, id: Option<Uuid>) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        let topic = image.topic(name).filter(|t| id.is_none_or(|i| i == t.id)).ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        Ok(self.quorum.append(vec![MetadataRecord::RemoveTopicRecord { topic_id: topic.id }]).await?)
    }

    /// Replaces a topic's config overrides with `configs` (one `ConfigRecord` per change).
    pub async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        if image.topic(name).is_none() {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        }
        let records = config_records(name, image.topic_configs(name), &configs);
        if records.is_empty() {
            return Ok(image.offset);
        }
        Ok(self.quorum.append(records).await?)
    }

    /// Replaces the dynamic configs of broker resource `name` ("" is the cluster-wide
    /// default, else a node id) with `configs`.
    pub async fn set_broker_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        let records = resource_config_records(CONFIG_BROKER, name, image.configs.get(&(CONFIG_BROKER, name.to_string())), &configs);
        if records.is_empty() {
            return Ok(image.offset);
        }
        Ok(self.quorum.append(records).await?)
    }

    /// Writes topics found on `broker`'s disk into the metadata log, with their ids, all
    /// partitions on that broker. Topics the log knows by now are skipped.
    /// With `migration`, also records that the node's disk has been taken over
    /// (`MetadataMigrationRecord`).
    /// With `migration`, the node's dynamic broker configs (`broker_configs`: resource name
    /// → configs) are recorded too.
    pub async fn adopt_topics(
        &self,
        broker: i32,
        topics: Vec<AdoptedTopic>,
        migration: bool,
        broker_configs: Vec<(String, BTreeMap<String, String>)>,
    ) -> Result<u64, ControllerError> {
        self.check_leader().await?;
        let _turn = self.writes.lock().await;
        let image = self.quorum.image().borrow().clone();
        let mut records = Vec::new();
        for t in topics.iter().filter(|t| image.topic(&t.name).is_none() && !image.topics.contains_key(&t.id)) {
            records.push(MetadataRecord::TopicRecord { name: t.name.clone(), topic_id: t.id });
            records.extend(partition_records(t.id, 0, vec![vec![broker]; t.partitions.max(0) as usize]));
            records.extend(config_records(&t.name, None, &t.configs));
        }
        if migration && !image.migrated {
            for (name, configs) in &broker_configs {
                records.extend(resource_config_records(CONFIG_BROKER, name, image.configs.get(&(CONFIG_BROKER, name.clone())), configs));
            }
            records.push(MetadataRecord::MetadataMigrationRecord { node_id: broker });
        }
        if records.is_empty() {
            return Ok(image.offset);
        }
        tracing::info!(topics = ?topics.iter().map(|t| &t.name).collect::<Vec<_>>(), "recording topics found on disk in the metadata log");
        Ok(self.quorum.append(records).await?)
    }
}
