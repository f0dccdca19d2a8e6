//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and every member's current and
//! target assignment. A classic group is GROUP_ID_NOT_FOUND here, which tells clients to
//! describe it with DescribeGroups instead.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::coordinator::assignor::Assignment;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};

/// READ, DESCRIBE, DELETE (no ACLs are enforced).
const GROUP_OPS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn wire(ctx: &Ctx<'_>, a: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = ctx.state.logs.topic_by_id(*id).map(|t| t.name.clone()).unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(&name)))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn handle(ctx: &Ctx<'_>, req: ConsumerGroupDescribeRequest) -> Outcome {
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup::default().with_group_id(id.clone());
            if req.include_authorized_operations {
                d.authorized_operations = GROUP_OPS_ALL;
            }
            let described = ctx.state.groups.with_consumer_group(&id, |g| {
                let members = g
                    .members()
                    .map(|m| {
                        let mut member = Member::default()
                            .with_member_id(str_bytes(&m.member_id))
                            .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                            .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                            .with_member_epoch(m.member_epoch)
                            .with_client_id(str_bytes(&m.client_id))
                            .with_client_host(str_bytes(&m.client_host))
                            .with_subscribed_topic_names(m.subscribed_topics.iter().map(|t| TopicName(str_bytes(t))).collect())
                            .with_subscribed_topic_regex(m.subscribed_regex.as_deref().map(str_bytes))
                            .with_assignment(wire(ctx, &m.assigned))
                            .with_target_assignment(wire(ctx, &g.target_of(&m.member_id)));
                        if ctx.version >= 1 {
                            member.member_type = 1; // a consumer-protocol member
                        }
                        member
                    })
                    .collect();
                (g.state_name(), g.group_epoch, g.assignment_epoch, g.assignor.clone(), members)
            });
            match described {
                Some((state, epoch, assignment_epoch, assignor, members)) => d
                    .with_group_state(str_bytes(state))
                    .with_group_epoch(epoch)
                    .with_assignment_epoch(assignment_epoch)
                    .with_assignor_name(str_bytes(&assignor))
                    .with_members(members),
                None => d
                    .with_error_code(Error::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(&format!("group {} is not a consumer group", id.as_str())))),
            }
        })
        .collect();
    ctx.respond(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
