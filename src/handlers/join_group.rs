//! JoinGroup: parks until the group's join phase completes (or answers at once).

use super::{code, str_bytes, Ctx, Outcome};
use crate::coordinator::member::JoinRequest;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

pub async fn handle(ctx: &Ctx<'_>, req: JoinGroupRequest) -> Outcome {
    let v = ctx.version;
    if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        let mut resp = JoinGroupResponse::default().with_error_code(e.code()).with_generation_id(-1).with_member_id(req.member_id.clone());
        if v < 6 {
            resp.protocol_name = Some(str_bytes(""));
        }
        return ctx.respond(&resp);
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id(),
        client_host: ctx.client_host(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in, as in Kafka.
        rebalance_timeout_ms: if v >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: v >= 4,
    };
    let r = ctx.state.groups.join(&req.group_id, join).await;
    let mut resp = JoinGroupResponse::default()
        .with_error_code(code(r.error))
        .with_generation_id(r.generation_id)
        .with_protocol_name(r.protocol_name.as_deref().map(str_bytes))
        .with_leader(str_bytes(&r.leader_id))
        .with_member_id(str_bytes(&r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(if v >= 5 { m.group_instance_id.as_deref().map(str_bytes) } else { None })
                        .with_metadata(m.metadata)
                })
                .collect(),
        );
    if v >= 7 {
        resp.protocol_type = r.protocol_type.as_deref().map(str_bytes);
    }
    if v < 6 && resp.protocol_name.is_none() {
        resp.protocol_name = Some(str_bytes("")); // a non-nullable string before v6
    }
    ctx.respond(&resp)
}
