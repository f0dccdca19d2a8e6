//! FindCoordinator: this node coordinates every group and every transactional id; share
//! groups are not served.

use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub async fn handle(ctx: &Ctx<'_>, req: FindCoordinatorRequest) -> Outcome {
    let adv = ctx.state.advertised_for(&ctx.conn.listener);
    let node = ctx.node_id();
    let answer = |key_type: i8| -> Result<(), (Error, &'static str)> {
        match key_type {
            GROUP | TRANSACTION => Ok(()),
            _ => Err((Error::InvalidRequest, "unknown coordinator key type")),
        }
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version < 4 {
        match answer(req.key_type) {
            Ok(()) => {
                resp = resp.with_node_id(BrokerId(node)).with_host(str_bytes(&adv.host)).with_port(adv.port as i32);
            }
            Err((e, msg)) => {
                resp = resp.with_error_code(e.code()).with_node_id(BrokerId(-1)).with_port(-1);
                if ctx.version >= 1 {
                    resp.error_message = Some(str_bytes(msg));
                }
            }
        }
    } else {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key);
                match answer(req.key_type) {
                    Ok(()) => c.with_node_id(BrokerId(node)).with_host(str_bytes(&adv.host)).with_port(adv.port as i32),
                    Err((e, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(msg))),
                }
            })
            .collect();
    }
    ctx.respond(&resp)
}
