//! AddPartitionsToTxn: v0–3 from producers (one transaction), v4+ the batched form
//! (many transactions, each possibly `verify_only`: which partitions are already in it,
//! as brokers ask before accepting transactional writes, KIP-890).
//! Partitions that do not exist fail with UNKNOWN_TOPIC_OR_PARTITION and the others of
//! the transaction with OPERATION_NOT_ATTEMPTED, as in Kafka.

use super::{fenced_as, Ctx, Error, Outcome};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::*;
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

/// First version that may carry PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &Ctx<'_>, req: AddPartitionsToTxnRequest) -> Outcome {
    if ctx.version <= 3 {
        let results = add(
            ctx,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return ctx.respond(&AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results));
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let topic_results = add(ctx, &t.transactional_id, t.producer_id.0, t.producer_epoch, t.verify_only, &t.topics).await;
        out.push(AddPartitionsToTxnResult::default().with_transactional_id(t.transactional_id.clone()).with_topic_results(topic_results));
    }
    ctx.respond(&AddPartitionsToTxnResponse::default().with_results_by_transaction(out))
}

async fn add(ctx: &Ctx<'_>, id: &str, producer_id: i64, epoch: i16, verify_only: bool, topics: &[AddPartitionsToTxnTopic]) -> Vec<AddPartitionsToTxnTopicResult> {
    let txns = &ctx.state.txns;
    let partitions: Vec<(String, i32)> =
        topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p))).collect();
    let missing: Vec<bool> = partitions.iter().map(|tp| !txns.partition_exists(tp)).collect();
    let errors: Vec<Option<Error>> = if missing.iter().any(|m| *m) {
        missing.iter().map(|m| Some(if *m { Error::UnknownTopicOrPartition } else { Error::OperationNotAttempted })).collect()
    } else if verify_only {
        match txns.verify_partitions(id, producer_id, epoch, &partitions) {
            Ok(found) => found.into_iter().map(|f| (!f).then_some(Error::InvalidTxnState)).collect(),
            Err(e) => vec![Some(e); partitions.len()],
        }
    } else {
        let result = txns.add_partitions(id, producer_id, epoch, &partitions).await.err();
        if let Some(e) = result {
            tracing::debug!(transactional_id = id, producer_id, epoch, error = ?e, "partitions not added to the transaction");
        }
        vec![result; partitions.len()]
    };
    let mut errors = errors.into_iter().map(|e| e.map(|e| fenced_as(e, ctx.version, FENCED_SINCE)));
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    let e = errors.next().flatten();
                    AddPartitionsToTxnPartitionResult::default().with_partition_index(*p).with_partition_error_code(super::code(e))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(results)
        })
        .collect()
}
