//! DescribeTransactions and ListTransactions: the transaction coordinator's ids, their
//! state, producer and partitions, for `kafka-transactions.sh` and admin clients.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::coordinator::txn_log::TxnState;
use kafka_protocol::messages::describe_transactions_response::{self as describe, TopicData};
use kafka_protocol::messages::list_transactions_response as list;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName,
};
use std::collections::BTreeMap;

pub async fn describe(ctx: &Ctx<'_>, req: DescribeTransactionsRequest) -> Outcome {
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let base = describe::TransactionState::default().with_transactional_id(id.clone());
            match ctx.state.txns.describe(id) {
                None => base.with_error_code(Error::TransactionalIdNotFound.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
                Some(d) => {
                    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (t, p) in &d.partitions {
                        by_topic.entry(t.clone()).or_default().push(*p);
                    }
                    let topics = by_topic
                        .into_iter()
                        .map(|(t, ps)| TopicData::default().with_topic(TopicName(str_bytes(&t))).with_partitions(ps))
                        .collect();
                    base.with_transaction_state(str_bytes(d.state.name()))
                        .with_transaction_timeout_ms(d.timeout_ms)
                        .with_transaction_start_time_ms(d.start_ms)
                        .with_producer_id(ProducerId(d.producer_id))
                        .with_producer_epoch(d.producer_epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    ctx.respond(&DescribeTransactionsResponse::default().with_transaction_states(states))
}

pub async fn list(ctx: &Ctx<'_>, req: ListTransactionsRequest) -> Outcome {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for f in &req.state_filters {
        match TxnState::from_name(f) {
            Some(s) => states.push(s),
            None => unknown.push(f.clone()),
        }
    }
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| !p.is_empty() && ctx.version >= 2) {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => return ctx.respond(&ListTransactionsResponse::default().with_error_code(Error::InvalidRegularExpression.code())),
        },
    };
    let now = ctx.state.txns.now();
    let listed = ctx
        .state
        .txns
        .list()
        .into_iter()
        .filter(|d| req.state_filters.is_empty() || states.contains(&d.state))
        .filter(|d| req.producer_id_filters.is_empty() || req.producer_id_filters.iter().any(|p| p.0 == d.producer_id))
        .filter(|d| req.duration_filter < 0 || ctx.version < 1 || (d.start_ms >= 0 && now - d.start_ms >= req.duration_filter))
        .filter(|d| pattern.as_ref().is_none_or(|r| r.is_match(&d.transactional_id)))
        .map(|d| {
            list::TransactionState::default()
                .with_transactional_id(str_bytes(&d.transactional_id).into())
                .with_producer_id(ProducerId(d.producer_id))
                .with_transaction_state(str_bytes(d.state.name()))
        })
        .collect();
    ctx.respond(&ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed))
}
