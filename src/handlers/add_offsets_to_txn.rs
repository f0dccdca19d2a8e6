//! AddOffsetsToTxn: puts the group's partition of `__consumer_offsets` into the
//! transaction, so the offsets TxnOffsetCommit writes there commit or abort with it.

use super::{fenced_as, Ctx, Outcome};
use crate::coordinator::offsets_store::{partition_for, OFFSETS_TOPIC};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &Ctx<'_>, req: AddOffsetsToTxnRequest) -> Outcome {
    let partition = partition_for(&req.group_id, ctx.state.groups.config().offsets_topic_partitions);
    let tp = (OFFSETS_TOPIC.to_string(), partition);
    // The offsets topic is created on first use; it must exist for its marker.
    let result = match super::find_coordinator::elsewhere(ctx, super::find_coordinator::TRANSACTION, &req.transactional_id) {
        Some(e) => Err(e),
        None => match ctx.state.groups.ensure_offsets_partition(partition) {
            Err(e) => Err(e),
            Ok(()) => ctx.state.txns.add_partitions(&req.transactional_id, req.producer_id.0, req.producer_epoch, &[tp]).await,
        },
    };
    let code = super::code(result.err().map(|e| fenced_as(e, ctx.version, FENCED_SINCE)));
    ctx.respond(&AddOffsetsToTxnResponse::default().with_error_code(code))
}
