//! ConsumerGroupHeartbeat (KIP-848): join, heartbeat, reconcile and leave in one call;
//! the broker computes the assignment.

use super::{str_bytes, Ctx, Outcome};
use crate::coordinator::assignor::Assignment;
use crate::coordinator::consumer_group::Heartbeat;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as WireAssignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

pub async fn handle(ctx: &Ctx<'_>, req: ConsumerGroupHeartbeatRequest) -> Outcome {
    if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        return ctx.respond(&ConsumerGroupHeartbeatResponse::default().with_error_code(e.code()).with_member_epoch(-1));
    }
    let owned = req.topic_partitions.map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        a
    });
    let hb = Heartbeat {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topics: req.subscribed_topic_names.map(|v| v.into_iter().map(|t| t.to_string()).collect()),
        subscribed_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id(),
        client_host: ctx.client_host(),
    };
    let resp = match ctx.state.groups.consumer_heartbeat(&req.group_id, hb) {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(&r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
            .with_assignment(r.assignment.map(|a| {
                WireAssignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(t, ps)| TopicPartitions::default().with_topic_id(t).with_partitions(ps.into_iter().collect()))
                        .collect(),
                )
            })),
        Err((e, msg)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(&msg)))
            .with_member_epoch(-1),
    };
    ctx.respond(&resp)
}
