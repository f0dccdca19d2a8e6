//! DescribeQuorum: the metadata quorum as `kafka-metadata-quorum describe --status` and
//! `--replication` show it — leader, epoch, high watermark, voters and observers with
//! their log end offsets. Kafka's brokers forward it to the controller; here every node
//! answers from its own view of the quorum.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::cluster::quorum::ReplicaState as QuorumReplica;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};

const METADATA_TOPIC: &str = "__cluster_metadata";

fn replica(r: &QuorumReplica, now_ms: i64) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(r.node_id))
        .with_log_end_offset(r.log_end_offset)
        .with_last_fetch_timestamp(if r.log_end_offset >= 0 { now_ms } else { -1 })
        .with_last_caught_up_timestamp(if r.log_end_offset >= 0 { now_ms } else { -1 })
}

pub async fn handle(ctx: &Ctx<'_>, req: DescribeQuorumRequest) -> Outcome {
    let status = ctx.state.quorum.status();
    let now = crate::time::now_ms();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let known = t.topic_name.0.as_str() == METADATA_TOPIC && p.partition_index == 0;
                    if !known {
                        return PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(Error::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes("DescribeQuorum describes __cluster_metadata-0 only")));
                    }
                    PartitionData::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(status.leader_id.unwrap_or(-1)))
                        .with_leader_epoch(status.leader_epoch as i32)
                        .with_high_watermark(status.high_watermark)
                        .with_current_voters(status.voters.iter().map(|r| replica(r, now)).collect())
                        .with_observers(status.observers.iter().map(|r| replica(r, now)).collect())
                })
                .collect();
            TopicData::default().with_topic_name(TopicName(t.topic_name.0.clone())).with_partitions(partitions)
        })
        .collect();
    // v2 lists the voters' controller endpoints; a lone node's quorum has none to dial.
    let image = ctx.state.quorum.image().borrow().clone();
    let nodes = status
        .voters
        .iter()
        .filter_map(|v| image.brokers.get(&v.node_id))
        .map(|b| {
            Node::default().with_node_id(BrokerId(b.id)).with_listeners(
                b.end_points
                    .iter()
                    .map(|e| Listener::default().with_name(str_bytes(&e.name)).with_host(str_bytes(&e.host)).with_port(e.port))
                    .collect(),
            )
        })
        .collect();
    ctx.respond(&DescribeQuorumResponse::default().with_topics(topics).with_nodes(if ctx.version >= 2 { nodes } else { Vec::new() }))
}
