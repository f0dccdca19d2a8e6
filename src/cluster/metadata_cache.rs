//! Kafka's `MetadataCache`: the questions request handlers ask of the metadata image —
//! who leads a partition and at which epoch, which brokers are alive, where a broker
//! listens. Handlers take one snapshot per request and ask it; they never see the quorum.
//!
//! A partition whose leader is fenced (or gone) has no leader until the replication part
//! can move leadership safely: it is offline, reported with leader -1.

use super::image::{MetadataImage, PartitionRegistration};
use super::records::{BrokerEndpoint, NO_LEADER};
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

pub struct MetadataCache {
    node_id: i32,
    image: watch::Receiver<Arc<MetadataImage>>,
}

/// This broker does not lead the partition: `leader` does (-1: nobody now) at `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLeader {
    pub leader: i32,
    pub epoch: i32,
}

impl MetadataCache {
    pub fn new(node_id: i32, image: watch::Receiver<Arc<MetadataImage>>) -> Self {
        MetadataCache { node_id, image }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The image as it stands; later changes do not touch it.
    pub fn snapshot(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }
}

impl MetadataImage {
    fn is_live(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// The partition's leader if its broker is alive, else `NO_LEADER`.
    pub fn live_leader(&self, p: &PartitionRegistration) -> i32 {
        if self.is_live(p.leader) {
            p.leader
        } else {
            NO_LEADER
        }
    }

    /// Replicas whose broker is fenced or gone (Kafka's `offline_replicas`).
    pub fn offline_replicas(&self, p: &PartitionRegistration) -> Vec<i32> {
        p.replicas.iter().copied().filter(|r| !self.is_live(*r)).collect()
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionRegistration> {
        self.topics.get(&topic_id)?.partitions.get(&partition)
    }

    /// Whether broker `me` leads `partition` of topic `topic_id`, and at which leader epoch.
    /// A partition the image does not know (a topic on disk not yet recorded: the lone node's
    /// internal topics between their creation and their recording) is the local log's.
    pub fn leader_epoch_if_leader(&self, me: i32, topic_id: Uuid, partition: i32) -> Result<i32, NotLeader> {
        match self.partition(topic_id, partition) {
            None => Ok(crate::LEADER_EPOCH),
            Some(p) if p.leader == me => Ok(p.leader_epoch),
            Some(p) => Err(NotLeader { leader: self.live_leader(p), epoch: p.leader_epoch }),
        }
    }

    /// Where broker `id` listens for connections of listener `listener`.
    pub fn endpoint(&self, id: i32, listener: &str) -> Option<&BrokerEndpoint> {
        self.brokers.get(&id)?.end_points.iter().find(|e| e.name == listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::records::MetadataRecord;

    #[test]
    fn leaders_are_named_only_while_their_broker_is_alive() {
        let mut img = MetadataImage::default();
        let t = Uuid::from_u128(7);
        let mut records = Vec::new();
        for id in [1, 2] {
            records.push(MetadataRecord::RegisterBrokerRecord {
                broker_id: id,
                incarnation_id: Uuid::from_u128(id as u128),
                broker_epoch: 1,
                end_points: vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9000 + id as u16, security_protocol: 0 }],
                rack: None,
                fenced: true,
            });
            records.push(MetadataRecord::UnfenceBrokerRecord { id, epoch: 1 });
        }
        records.push(MetadataRecord::TopicRecord { name: "a".into(), topic_id: t });
        records.push(MetadataRecord::PartitionRecord { partition_id: 0, topic_id: t, replicas: vec![2, 1], isr: vec![2, 1], leader: 2, leader_epoch: 3, partition_epoch: 0 });
        img.apply_batch(1, &records).unwrap();
        assert_eq!(img.leader_epoch_if_leader(2, t, 0), Ok(3));
        assert_eq!(img.leader_epoch_if_leader(1, t, 0), Err(NotLeader { leader: 2, epoch: 3 }));
        assert_eq!(img.leader_epoch_if_leader(1, Uuid::from_u128(8), 0), Ok(crate::LEADER_EPOCH), "unknown to the image: the local log's");
        assert_eq!(img.endpoint(2, "PLAINTEXT").map(|e| e.port), Some(9002));
        img.apply_batch(2, &[MetadataRecord::FenceBrokerRecord { id: 2, epoch: 1 }]).unwrap();
        assert_eq!(img.leader_epoch_if_leader(1, t, 0), Err(NotLeader { leader: NO_LEADER, epoch: 3 }), "a fenced leader's partition is offline");
        let p = img.partition(t, 0).unwrap();
        assert_eq!((img.live_leader(p), img.offline_replicas(p)), (NO_LEADER, vec![2]));
    }
}
