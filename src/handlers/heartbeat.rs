//! Heartbeat: keeps a classic group member alive and tells it when to rejoin.

use super::{code, Ctx, Outcome};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub async fn handle(ctx: &Ctx<'_>, req: HeartbeatRequest) -> Outcome {
    let e = match super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        Some(e) => Some(e),
        None => ctx.state.groups.heartbeat(&req.group_id, &req.member_id, req.group_instance_id.as_deref(), req.generation_id),
    };
    ctx.respond(&HeartbeatResponse::default().with_error_code(code(e)))
}
