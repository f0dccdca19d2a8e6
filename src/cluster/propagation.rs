//! A topic creation (or growth) answers once every live broker lists the new partitions.
//!
//! Kafka answers CreateTopics once the controller has committed the topic; the other
//! brokers learn of it a moment later. A client that produces at once may meet a leader
//! that does not know the topic yet, and the idempotent producer's pipelined requests then
//! go wrong for good: an earlier batch is refused (UNKNOWN_TOPIC_OR_PARTITION), a later one
//! is taken once the topic is there, and the retried earlier batch is out of sequence until
//! `delivery.timeout.ms` expires it (seen with the Java client: one of 32 partitions lost
//! a batch in about one run in ten). Waiting here closes that window for "create, then
//! use" — the common case — at the cost of one Metadata round trip per broker.
//!
//! A broker lists a topic only once its logs hold the partitions (the publisher shows the
//! handlers an image only after the logs match it), so "listed" means "ready". The wait is
//! bounded: a broker that is down but not fenced yet delays the answer by at most
//! `timeout`, and one that is fenced meanwhile is no longer waited for.

use super::broker_client;
use super::metadata_cache::MetadataCache;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;
use tokio::time::Instant;

const VERSION: i16 = 12;
const POLL: Duration = Duration::from_millis(20);
const MAX_RESPONSE: usize = 64 << 20;

/// True when `resp` lists every topic of `want` with at least its partition count.
fn lists_all(resp: &MetadataResponse, want: &[(String, i32)]) -> bool {
    want.iter().all(|(name, count)| {
        resp.topics.iter().any(|t| {
            t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.as_str() == name) && t.partitions.len() as i32 >= *count
        })
    })
}

/// Waits until every other unfenced broker lists `topics` (name, partition count) on
/// `listener`, or `timeout` passes; a broker that is late only gets a debug line.
pub async fn wait_listed(metadata: &MetadataCache, listener: &str, topics: &[(String, i32)], timeout: Duration) {
    if topics.is_empty() {
        return;
    }
    let req = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|(n, _)| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.clone())))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(false);
    let me = metadata.node_id();
    let others: Vec<i32> = metadata.snapshot().brokers.values().filter(|b| b.id != me && !b.fenced).map(|b| b.id).collect();
    let deadline = Instant::now() + timeout;
    let waits = others.into_iter().map(|id| {
        let req = &req;
        async move {
            loop {
                let image = metadata.snapshot();
                let Some(addr) = image.brokers.get(&id).filter(|b| !b.fenced).and_then(|_| image.endpoint(id, listener)).map(|e| format!("{}:{}", e.host, e.port)) else {
                    return; // fenced or gone meanwhile
                };
                let call = broker_client::call::<_, MetadataResponse>(&addr, ApiKey::Metadata, VERSION, "ferrite-admin-propagation", req, MAX_RESPONSE);
                if let Ok(Ok(resp)) = tokio::time::timeout_at(deadline, call).await {
                    if lists_all(&resp, topics) {
                        return;
                    }
                }
                if Instant::now() + POLL >= deadline {
                    tracing::debug!(broker = id, ?topics, "a broker did not list new partitions in time; answering anyway");
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    });
    futures::future::join_all(waits).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};

    fn topic(name: &str, error: i16, partitions: usize) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.into()))))
            .with_error_code(error)
            .with_partitions(vec![MetadataResponsePartition::default(); partitions])
    }

    #[test]
    fn listed_means_every_topic_known_with_enough_partitions() {
        let want = vec![("a".to_string(), 3), ("b".to_string(), 1)];
        let resp = MetadataResponse::default().with_topics(vec![topic("a", 0, 3), topic("b", 0, 1)]);
        assert!(lists_all(&resp, &want));
        let short = MetadataResponse::default().with_topics(vec![topic("a", 0, 2), topic("b", 0, 1)]);
        assert!(!lists_all(&short, &want), "a partition missing");
        let unknown = MetadataResponse::default().with_topics(vec![topic("a", 0, 3), topic("b", 3, 0)]);
        assert!(!lists_all(&unknown, &want), "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(!lists_all(&MetadataResponse::default(), &want));
    }
}
