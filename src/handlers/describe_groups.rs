//! DescribeGroups: state, protocol and members (with metadata and assignment once the
//! group is Stable, as Kafka reports them).

use super::{str_bytes, Ctx, Error, Outcome};
use crate::coordinator::GroupCoordinator;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

/// Every group operation granted (no ACLs are enforced): READ, DESCRIBE, DELETE.
const GROUP_OPS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn handle(ctx: &Ctx<'_>, req: DescribeGroupsRequest) -> Outcome {
    let v = ctx.version;
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup::default().with_group_id(id.clone());
            if v >= 3 && req.include_authorized_operations {
                d.authorized_operations = GROUP_OPS_ALL;
            }
            if let Some(e) = GroupCoordinator::validate_group_id(&id) {
                return d.with_error_code(e.code());
            }
            if ctx.state.groups.is_consumer_group(&id) {
                // As Kafka: a KIP-848 group is described by ConsumerGroupDescribe.
                return d
                    .with_error_code(Error::GroupIdNotFound.code())
                    .with_error_message(if v >= 6 { Some(str_bytes(&format!("group {} is not a classic group", id.as_str()))) } else { None })
                    .with_group_state(str_bytes("Dead"));
            }
            match ctx.state.groups.describe(&id) {
                None if v >= 6 => d
                    .with_error_code(Error::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(&format!("group {} not found", id.as_str()))))
                    .with_group_state(str_bytes("Dead")),
                None => d.with_group_state(str_bytes("Dead")),
                Some(g) => d
                    .with_group_state(str_bytes(g.state.name()))
                    .with_protocol_type(str_bytes(&g.protocol_type))
                    .with_protocol_data(str_bytes(&g.protocol_name))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(&m.member_id))
                                    .with_group_instance_id(if v >= 4 { m.group_instance_id.as_deref().map(str_bytes) } else { None })
                                    .with_client_id(str_bytes(&m.client_id))
                                    .with_client_host(str_bytes(&m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ctx.respond(&DescribeGroupsResponse::default().with_groups(groups))
}
