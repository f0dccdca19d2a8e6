//! TxnOffsetCommit: offsets of a consume-transform-produce loop, written into
//! `__consumer_offsets` inside the producer's transaction; they take effect when the
//! transaction commits. The producer is checked with the transaction coordinator when it
//! is on this broker (on another, the offsets partition's producer state still fences an
//! old epoch, as in Kafka), the member (when given, v3+) with the group coordinator.

use super::offset_commit::{check_offsets, offered, Offered};
use super::{code, fenced_as, Ctx, Outcome};
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

const FENCED_SINCE: i16 = 3;

pub async fn handle(ctx: &Ctx<'_>, req: TxnOffsetCommitRequest) -> Outcome {
    let groups = &ctx.state.groups;
    let (verdicts, commits) = check_offsets(
        ctx,
        offered!(ctx, req.topics, 2),
    );
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let here = super::find_coordinator::coordinates(ctx, super::find_coordinator::TRANSACTION, &req.transactional_id);
    let checked = match super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        Some(e) => Err(e),
        None if here => ctx.state.txns.validate_producer(&req.transactional_id, pid, epoch),
        None => Ok(()),
    };
    let result = match checked {
        Err(e) => Err(e),
        Ok(()) => {
            let member = if ctx.version >= 3 { req.member_id.as_str() } else { "" };
            let generation = if ctx.version >= 3 { req.generation_id } else { -1 };
            let instance = if ctx.version >= 3 { req.group_instance_id.as_deref() } else { None };
            groups.commit_txn_offsets(&req.group_id, (pid, epoch), member, instance, generation, commits).await
        }
    };
    if let Err(e) = &result {
        tracing::debug!(group = %req.group_id.as_str(), transactional_id = %req.transactional_id.as_str(), error = ?e, "TxnOffsetCommit refused");
    }
    let failure = result.err().map(|e| fenced_as(e, ctx.version, FENCED_SINCE));
    let topics = req
        .topics
        .iter()
        .zip(verdicts)
        .map(|(t, row)| {
            let partitions = row
                .into_iter()
                .map(|(p, early)| TxnOffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code(early.or(failure))))
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    ctx.respond(&TxnOffsetCommitResponse::default().with_topics(topics))
}
