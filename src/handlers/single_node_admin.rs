//! ElectLeaders and partition reassignments, answered truthfully from the metadata image
//! while leadership never moves (it moves with replication): a partition whose leader is
//! alive is already led by its preferred (first) replica; one whose leader is fenced has
//! no other eligible leader yet; nothing is being reassigned, and the only reassignment
//! accepted is to the replicas a partition already has.

use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;

pub async fn elect_leaders(ctx: &Ctx<'_>, req: ElectLeadersRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let image = ctx.state.metadata.snapshot();
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
                        let Some(topic) = topic.as_ref().filter(|t| t.partition(p).is_some()) else {
                            return r.with_error_code(Error::UnknownTopicOrPartition.code());
                        };
                        let offline = image.partition(topic.id, p).is_some_and(|reg| image.live_leader(reg) < 0);
                        if offline {
                            r.with_error_code(Error::EligibleLeadersNotAvailable.code())
                                .with_error_message(Some(str_bytes("the leader's broker is fenced and no other replica holds the partition's records yet")))
                        } else {
                            r.with_error_code(Error::ElectionNotNeeded.code())
                                .with_error_message(Some(str_bytes("the preferred replica is already the leader")))
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
    let image = ctx.state.metadata.snapshot();
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
                        let current: Vec<i32> = match topic.as_ref().map(|t| (t.id, t.partition(p.partition_index))) {
                            Some((id, Some(_))) => image.partition(id, p.partition_index).map_or_else(|| vec![node], |reg| reg.replicas.clone()),
                            _ => Vec::new(),
                        };
                        let refusal = match (current.is_empty(), &p.replicas) {
                            (true, _) => Some((Error::UnknownTopicOrPartition, None)),
                            (false, None) => Some((Error::NoReassignmentInProgress, Some("nothing is being reassigned".to_string()))),
                            (false, Some(r)) if r.iter().map(|b| b.0).eq(current.iter().copied()) => None, // already so
                            (false, Some(_)) => Some((
                                Error::InvalidReplicaAssignment,
                                Some(format!("the replicas are {current:?}; moving replicas needs replication, which is not served yet")),
                            )),
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
