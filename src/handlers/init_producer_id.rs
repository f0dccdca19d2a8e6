//! InitProducerId for idempotent producers: a fresh producer id at epoch 0 (Kafka gives a
//! non-transactional producer a new id even when it names its old one). Transactional
//! ids wait for the transaction coordinator: COORDINATOR_NOT_AVAILABLE until then.

use super::{Ctx, Error, Outcome};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub async fn handle(ctx: &Ctx<'_>, req: InitProducerIdRequest) -> Outcome {
    let resp = if req.transactional_id.is_some() {
        InitProducerIdResponse::default().with_error_code(Error::CoordinatorNotAvailable.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
    } else {
        match ctx.state.producer_ids.next_id() {
            Ok(id) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(e) => {
                tracing::error!(error = %e, "cannot reserve producer ids; check the log directory");
                InitProducerIdResponse::default().with_error_code(Error::KafkaStorageError.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
            }
        }
    };
    ctx.respond(&resp)
}
