//! Kafka's `TransactionMarkerChannelManager`: the transaction coordinator's way to end a
//! transaction in partitions other brokers lead — a WriteTxnMarkers request to each
//! partition's leader, on the inter-broker listener (`inter.broker.listener.name`, else
//! this node's first client listener: brokers of one cluster name their listeners alike).
//!
//! A marker is retried, with a growing pause, until its partition's leader has written it
//! or the partition is gone from the metadata image: a transaction must never stay open
//! in a partition because one request failed. A partition with no live leader waits for
//! one.

use super::metadata_cache::MetadataCache;
use crate::coordinator::transaction_coordinator::{TopicPartition, COORDINATOR_EPOCH};
use crate::coordinator::txn_store::MarkerChannel;
use crate::coordinator::internal_topic::TxnProducer;
use futures::future::BoxFuture;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const VERSION: i16 = 1;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// WriteTxnMarkers answers are small; a larger frame is not one.
const MAX_RESPONSE: usize = 16 << 20;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

pub struct TxnMarkerChannel {
    metadata: Arc<MetadataCache>,
    listener: String,
}

impl TxnMarkerChannel {
    pub fn new(metadata: Arc<MetadataCache>, listener: String) -> Self {
        TxnMarkerChannel { metadata, listener }
    }
}

/// One WriteTxnMarkers call; returns the partitions the leader did not write.
async fn call(addr: &str, partitions: &[TopicPartition], producer: TxnProducer, commit: bool) -> std::io::Result<Vec<TopicPartition>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_transaction_result(commit)
        .with_coordinator_epoch(COORDINATOR_EPOCH)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| WritableTxnMarkerTopic::default().with_name(TopicName(StrBytes::from_string(t.to_string()))).with_partition_indexes(ps))
                .collect(),
        );
    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let resp: WriteTxnMarkersResponse = super::broker_client::call(addr, ApiKey::WriteTxnMarkers, VERSION, "ferrite-txn-marker-channel", &req, MAX_RESPONSE).await?;
    let mut written = BTreeSet::new();
    for m in &resp.markers {
        for t in &m.topics {
            for p in &t.partitions {
                // A partition deleted meanwhile needs no marker.
                if p.error_code == 0 || p.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                    written.insert((t.name.to_string(), p.partition_index));
                }
            }
        }
    }
    Ok(partitions.iter().filter(|tp| !written.contains(*tp)).cloned().collect())
}

impl MarkerChannel for TxnMarkerChannel {
    fn leads(&self, tp: &TopicPartition) -> bool {
        let image = self.metadata.snapshot();
        match image.topic(&tp.0).and_then(|t| t.partitions.get(&tp.1)) {
            Some(p) => p.leader == self.metadata.node_id(),
            None => true, // unknown to the image: the local log's (or gone)
        }
    }

    fn send(&self, partitions: Vec<TopicPartition>, producer: TxnProducer, commit: bool) -> BoxFuture<'static, ()> {
        let (metadata, listener) = (self.metadata.clone(), self.listener.clone());
        Box::pin(async move {
            let mut left = partitions;
            let mut pause = Duration::from_millis(50);
            let mut attempts = 0u32;
            while !left.is_empty() {
                let image = metadata.snapshot();
                let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
                let mut waiting = Vec::new();
                for tp in left {
                    match image.topic(&tp.0).and_then(|t| t.partitions.get(&tp.1)) {
                        None => tracing::debug!(topic = %tp.0, partition = tp.1, "no marker for a deleted partition"),
                        Some(p) => match image.live_leader(p) {
                            -1 => waiting.push(tp),
                            leader => by_leader.entry(leader).or_default().push(tp),
                        },
                    }
                }
                for (leader, tps) in by_leader {
                    let Some(e) = image.endpoint(leader, &listener) else {
                        waiting.extend(tps);
                        continue;
                    };
                    let addr = format!("{}:{}", e.host, e.port);
                    match tokio::time::timeout(CALL_TIMEOUT, call(&addr, &tps, producer, commit)).await {
                        Ok(Ok(not_written)) => waiting.extend(not_written),
                        Ok(Err(err)) => {
                            tracing::debug!(broker = leader, %addr, error = %err, "WriteTxnMarkers failed; retrying");
                            waiting.extend(tps);
                        }
                        Err(_) => waiting.extend(tps),
                    }
                }
                left = waiting;
                if left.is_empty() {
                    break;
                }
                attempts += 1;
                if attempts.is_multiple_of(20) {
                    tracing::warn!(producer_id = producer.0, partitions = ?left, "transaction markers not written yet; the transaction stays prepared until they are");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        })
    }
}
