//! EndTxn: commits or aborts the producer's transaction; answered once the markers are
//! in every partition of it (and durable per the flush settings).

use super::{fenced_as, Ctx, Outcome};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &Ctx<'_>, req: EndTxnRequest) -> Outcome {
    let result = match super::find_coordinator::elsewhere(ctx, super::find_coordinator::TRANSACTION, &req.transactional_id) {
        Some(e) => Err(e),
        None => ctx.state.txns.end_txn(&req.transactional_id, req.producer_id.0, req.producer_epoch, req.committed).await,
    };
    if let Err(e) = &result {
        tracing::debug!(transactional_id = %req.transactional_id.as_str(), commit = req.committed, error = ?e, "EndTxn refused");
    }
    let code = super::code(result.err().map(|e| fenced_as(e, ctx.version, FENCED_SINCE)));
    ctx.respond(
        &EndTxnResponse::default().with_error_code(code).with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch),
    )
}
