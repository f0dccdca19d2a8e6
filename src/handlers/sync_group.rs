//! SyncGroup: the leader hands in the assignment; everyone gets their part.

use super::{code, str_bytes, Ctx, Outcome};
use crate::coordinator::member::SyncRequest;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

pub async fn handle(ctx: &Ctx<'_>, req: SyncGroupRequest) -> Outcome {
    if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        return ctx.respond(&SyncGroupResponse::default().with_error_code(e.code()));
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let r = ctx.state.groups.sync(&req.group_id, sync).await;
    let mut resp = SyncGroupResponse::default().with_error_code(code(r.error)).with_assignment(r.assignment);
    if ctx.version >= 5 {
        resp.protocol_type = r.protocol_type.as_deref().map(str_bytes);
        resp.protocol_name = r.protocol_name.as_deref().map(str_bytes);
    }
    ctx.respond(&resp)
}
