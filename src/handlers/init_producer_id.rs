//! InitProducerId. Without a transactional id: a fresh producer id at epoch 0 (Kafka gives
//! a non-transactional producer a new id even when it names its old one). With one: the
//! transaction coordinator's producer for that id, its epoch bumped (KIP-98, KIP-360).

use super::{fenced_as, Ctx, Error, Outcome};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

const FENCED_SINCE: i16 = 4;

pub async fn handle(ctx: &Ctx<'_>, req: InitProducerIdRequest) -> Outcome {
    let id = req.transactional_id.as_deref().filter(|id| !id.is_empty());
    let refused = id.and_then(|id| super::find_coordinator::elsewhere(ctx, super::find_coordinator::TRANSACTION, id));
    let result = match (id, refused) {
        (_, Some(e)) => Err(e),
        (Some(id), None) => {
            let expected = (ctx.version >= 3 && req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
            let r = ctx.state.txns.init_producer_id(id, req.transaction_timeout_ms, expected).await;
            if let Err(e) = &r {
                tracing::debug!(transactional_id = %id.as_str(), error = ?e, "InitProducerId refused");
            }
            r.map_err(|e| fenced_as(e, ctx.version, FENCED_SINCE))
        }
        (None, None) => ctx.state.producer_ids.next_id_wait(std::time::Duration::from_secs(5)).await.map(|id| (id, 0)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                // A block of ids is on its way from the controller: the client retries.
                return Error::CoordinatorLoadInProgress;
            }
            tracing::error!(error = %e, "cannot get producer ids from the controller");
            Error::CoordinatorNotAvailable
        }),
    };
    let resp = match result {
        Ok((id, epoch)) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
        Err(e) => InitProducerIdResponse::default().with_error_code(e.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
    };
    ctx.respond(&resp)
}
