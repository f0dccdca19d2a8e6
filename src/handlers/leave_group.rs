//! LeaveGroup: one member (v0–2) or a batch of members by id or instance id (v3+).

use super::{code, str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub async fn handle(ctx: &Ctx<'_>, req: LeaveGroupRequest) -> Outcome {
    if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        return ctx.respond(&LeaveGroupResponse::default().with_error_code(e.code()));
    }
    let batched = ctx.version >= 3;
    let named: Vec<(String, Option<String>)> = if batched {
        req.members.iter().map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string()))).collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let outcome = ctx.state.groups.leave(&req.group_id, &named).await;
    let resp = match outcome {
        Err(e) if batched && e == Error::UnknownMemberId => {
            // The group is unknown: every member named is unknown.
            LeaveGroupResponse::default().with_members(
                named.iter().map(|(m, i)| member(m, i.as_deref(), Some(Error::UnknownMemberId))).collect(),
            )
        }
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) if batched => LeaveGroupResponse::default().with_members(
            named.iter().zip(results).map(|((m, i), r)| member(m, i.as_deref(), r.err())).collect(),
        ),
        Ok(mut results) => LeaveGroupResponse::default().with_error_code(code(results.pop().and_then(|r| r.err()))),
    };
    ctx.respond(&resp)
}

fn member(member_id: &str, instance: Option<&str>, e: Option<Error>) -> MemberResponse {
    MemberResponse::default()
        .with_member_id(str_bytes(member_id))
        .with_group_instance_id(instance.map(str_bytes))
        .with_error_code(code(e))
}
