//! ElectLeaders and partition reassignments, answered truthfully for one node: every
//! partition's only replica is this node and already its (preferred) leader, and nothing
//! is ever being reassigned.

use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;

pub async fn elect_leaders(ctx: &Ctx<'_>, req: ElectLeadersRequest) -> Outcome {
    let logs = &ctx.state.logs;
    // Without a list Kafka elects where needed and reports those: here, none.
    let results = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let topic = logs.topic(&t.topic);
            ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(
                t.partitions
                    .iter()
                    .map(|&p| {
                        let r = PartitionResult::default().with_partition_id(p);
                        if topic.as_ref().and_then(|t| t.partition(p)).is_none() {
                            r.with_error_code(Error::UnknownTopicOrPartition.code())
                        } else {
                            r.with_error_code(Error::ElectionNotNeeded.code())
                                .with_error_message(Some(str_bytes("the only replica is already the leader")))
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    ctx.respond(&ElectLeadersResponse::default().with_replica_election_results(results))
}

pub async fn list_reassignments(ctx: &Ctx<'_>, _req: ListPartitionReassignmentsRequest) -> Outcome {
    ctx.respond(&ListPartitionReassignmentsResponse::default())
}

pub async fn alter_reassignments(ctx: &Ctx<'_>, req: AlterPartitionReassignmentsRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let node = ctx.node_id();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let topic = logs.topic(&t.name);
            ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .map(|p| {
                        let r = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                        let refusal = match (topic.as_ref().and_then(|t| t.partition(p.partition_index)), &p.replicas) {
                            (None, _) => Some((Error::UnknownTopicOrPartition, None)),
                            (Some(_), None) => Some((Error::NoReassignmentInProgress, Some("nothing is being reassigned".to_string()))),
                            (Some(_), Some(r)) if r.len() == 1 && r[0].0 == node => None, // already so
                            (Some(_), Some(_)) => Some((Error::InvalidReplicaAssignment, Some(format!("broker {node} is the only broker")))),
                        };
                        match refusal {
                            None => r,
                            Some((e, msg)) => r.with_error_code(e.code()).with_error_message(msg.map(|m| str_bytes(&m))),
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    ctx.respond(&AlterPartitionReassignmentsResponse::default().with_responses(responses))
}
