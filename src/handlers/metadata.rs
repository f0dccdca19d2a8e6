//! Metadata: the live brokers, the active controller, the cluster id, and topics with
//! their partitions' leaders, epochs, replicas, ISR and offline replicas — all from the
//! metadata image, the same on every broker. Creates missing topics (through the
//! controller) when `auto.create.topics.enable` and the client allow it.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::cluster::image::MetadataImage;
use crate::cluster::records::NO_LEADER;
use crate::storage::{Topic, TopicError};
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Authorized-operations value meaning "not requested".
pub const OPS_OMITTED: i32 = i32::MIN;
/// Every topic operation (READ..DESCRIBE_CONFIGS) granted: no ACLs are enforced.
const TOPIC_OPS_ALL: i32 = 0b1111_1111_1000;
/// Every cluster operation granted (no ACLs are enforced).
pub const CLUSTER_OPS_ALL: i32 = 0b1111_1111_1000;

/// A topic's partitions as the metadata image has them: leader (-1 while its broker is
/// fenced: LEADER_NOT_AVAILABLE), leader epoch, replicas, in-sync replicas that are alive
/// (the last one stays, as Kafka keeps it), offline replicas. A topic the image does not
/// know yet (the lone node's internal topics before they are recorded) is this node's.
fn describe_topic(topic: &Topic, image: &MetadataImage, node: i32, ops: i32) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let r = MetadataResponsePartition::default().with_partition_index(p.index);
            match image.partition(topic.id, p.index) {
                Some(reg) => {
                    let leader = image.live_leader(reg);
                    let offline = image.offline_replicas(reg);
                    let mut isr: Vec<i32> = reg.isr.iter().copied().filter(|b| !offline.contains(b)).collect();
                    if isr.is_empty() {
                        isr = reg.isr.clone();
                    }
                    let error = if leader == NO_LEADER { Error::LeaderNotAvailable.code() } else { 0 };
                    r.with_error_code(error)
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(reg.leader_epoch)
                        .with_replica_nodes(ids(&reg.replicas))
                        .with_isr_nodes(ids(&isr))
                        .with_offline_replicas(ids(&offline))
                }
                None => r
                    .with_leader_id(BrokerId(node))
                    .with_leader_epoch(crate::LEADER_EPOCH)
                    .with_replica_nodes(vec![BrokerId(node)])
                    .with_isr_nodes(vec![BrokerId(node)]),
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_topic_authorized_operations(ops)
        .with_partitions(partitions)
}

fn error_topic(name: Option<TopicName>, id: uuid::Uuid, err: Error, ops: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(id)
        .with_error_code(err.code())
        .with_topic_authorized_operations(ops)
}

pub async fn handle(ctx: &Ctx<'_>, req: MetadataRequest) -> Outcome {
    let node = ctx.node_id();
    let logs = &ctx.state.logs;
    let ops = if req.include_topic_authorized_operations { TOPIC_OPS_ALL } else { OPS_OMITTED };
    let auto_create = ctx.state.config.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    let mut topics = Vec::new();
    let image = ctx.state.metadata.snapshot();
    if all {
        topics = logs.topics().iter().map(|t| describe_topic(t, &image, node, ops)).collect();
    } else {
        for wanted in req.topics.unwrap_or_default() {
            let found: Result<Arc<Topic>, Error> = match &wanted.name {
                Some(name) => match logs.topic(name) {
                    Some(t) => Ok(t),
                    None if auto_create => {
                        let parts = ctx.state.config.num_partitions;
                        let rf = ctx.state.config.default_replication_factor;
                        match ctx.state.topic_admin.create_topic(name, parts, rf, Vec::new(), BTreeMap::new(), false).await {
                            Ok(t) => Ok(t),
                            Err(TopicError::AlreadyExists(_)) => logs.topic(name).ok_or(Error::UnknownTopicOrPartition),
                            Err(TopicError::InvalidName(_)) => Err(Error::InvalidTopicException),
                            Err(e) => {
                                tracing::warn!(topic = %name.0, error = %e, "automatic topic creation failed");
                                Err(Error::UnknownTopicOrPartition)
                            }
                        }
                    }
                    None if crate::storage::log_manager::validate_topic_name(name).is_err() => Err(Error::InvalidTopicException),
                    None => Err(Error::UnknownTopicOrPartition),
                },
                None => logs.topic_by_id(wanted.topic_id).ok_or(Error::UnknownTopicId),
            };
            topics.push(match found {
                Ok(t) => describe_topic(&t, &ctx.state.metadata.snapshot(), node, ops),
                Err(e) => error_topic(wanted.name.clone(), wanted.topic_id, e, ops),
            });
        }
    }
    let live = super::live_brokers::live_brokers(ctx);
    let controller = super::live_brokers::controller_id(ctx, &live);
    let brokers = live
        .iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&ctx.state.logs.cluster_id)))
        .with_controller_id(BrokerId(controller))
        // Metadata v8–10 carry the cluster's operations when asked (DescribeCluster since).
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations { CLUSTER_OPS_ALL } else { OPS_OMITTED })
        .with_topics(topics);
    ctx.respond(&resp)
}
