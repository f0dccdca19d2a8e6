//! Produce: validate each partition's batches (magic 2, CRC-32C, sizes, record framing),
//! append them as they came with only their offsets stamped, and answer per partition.
//! acks=0 gets no response; acks=1/-1 are answered after the append, and after the fsync
//! when the flush policy (`flush.messages`, e.g. 1) asks for one. A partition another
//! broker leads is answered NOT_LEADER_OR_FOLLOWER with that leader (KIP-951).

use crate::metrics::Metrics;
use crate::storage::log::AppendError;
use crate::storage::producer_state::ProducerError;
use super::not_leader::{node_endpoints, Leadership};
use super::{str_bytes, Ctx, Error, Outcome};
use crate::storage::batch::{self, BatchError, BatchHeader};
use crate::storage::recompress;
use crate::storage::Partition;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use std::sync::Arc;

fn error_response(index: i32, err: Error, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(err.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(|m| str_bytes(&m)))
}

fn batch_error(e: &BatchError) -> Error {
    match e {
        BatchError::Corrupt | BatchError::CrcMismatch => Error::CorruptMessage,
        BatchError::TooLarge(_) => Error::MessageTooLarge,
        BatchError::UnsupportedMagic(_) | BatchError::Invalid(_) => Error::InvalidRecord,
    }
}

/// Validates and appends one partition's records. Returns the response and, when the
/// flush policy asks for it, the offset that must be fsynced before answering.
fn append(partition: &Partition, data: &PartitionProduceData, metrics: &Metrics) -> (PartitionProduceResponse, Option<i64>) {
    let index = data.index;
    let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) else {
        return (error_response(index, Error::InvalidRecord, Some("no record batches".into())), None);
    };
    let (max, compact, codec) = {
        let log = partition.log();
        let c = log.config();
        (c.max_message_bytes, c.cleanup_policy.compact, c.compression_type)
    };
    let checked: Result<Vec<(&[u8], BatchHeader)>, BatchError> = batch::split_batches(records).and_then(|bs| {
        bs.into_iter().map(|b| batch::validate_produced(b, max).map(|h| (b, h))).collect()
    });
    let batches = match checked {
        Ok(b) => b,
        Err(e) => return (error_response(index, batch_error(&e), Some(e.to_string())), None),
    };
    if compact {
        for (b, h) in &batches {
            match batch::all_records_keyed(b, h) {
                Ok(true) => {}
                Ok(false) => {
                    let msg = format!("compacted topic {} cannot accept a record without a key", partition.topic);
                    return (error_response(index, Error::InvalidRecord, Some(msg)), None);
                }
                Err(e) => return (error_response(index, batch_error(&e), Some(e.to_string())), None),
            }
        }
    }
    // A topic with its own compression.type gets batches re-encoded with that codec.
    let mut recompressed: Vec<Option<(Vec<u8>, BatchHeader)>> = Vec::new();
    if let Some(codec) = codec {
        for (b, h) in &batches {
            match recompress::recompress(b, h, codec) {
                Ok(r) => recompressed.push(r),
                Err(e) => return (error_response(index, batch_error(&e), Some(e.to_string())), None),
            }
        }
    }
    let batches: Vec<(&[u8], BatchHeader)> = if recompressed.iter().any(Option::is_some) {
        batches.iter().zip(&recompressed).map(|(orig, new)| new.as_ref().map_or(*orig, |(b, h)| (&b[..], *h))).collect()
    } else {
        batches
    };
    match partition.append(&batches) {
        Ok((info, flush)) => {
            if info.duplicate {
                metrics.duplicate_batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (
            PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time)
                .with_log_start_offset(info.log_start_offset),
            flush.then_some(info.last_offset + 1),
            )
        }
        Err(AppendError::Io(e)) => {
            tracing::error!(topic = %partition.topic, partition = index, error = %e, "append failed; check the log directory's disk");
            (error_response(index, Error::KafkaStorageError, Some(e.to_string())), None)
        }
        Err(AppendError::Producer(e)) => {
            let code = match e {
                ProducerError::InvalidEpoch { .. } => Error::InvalidProducerEpoch,
                ProducerError::OutOfOrder(_) => Error::OutOfOrderSequenceNumber,
            };
            (error_response(index, code, Some(e.to_string())), None)
        }
        Err(AppendError::Invalid(why)) => (error_response(index, Error::InvalidRecord, Some(why.to_string())), None),
    }
}

pub async fn handle(ctx: &Ctx<'_>, req: ProduceRequest) -> Outcome {
    let acks = req.acks;
    let logs = &ctx.state.logs;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut flushes: Vec<(Arc<Partition>, usize, usize, i64)> = Vec::new();
    let mut leadership = Leadership::new(ctx);
    for topic_data in &req.topic_data {
        let topic = if ctx.version >= 13 { logs.topic_by_id(topic_data.topic_id) } else { logs.topic(&topic_data.name) };
        let unknown = if ctx.version >= 13 { Error::UnknownTopicId } else { Error::UnknownTopicOrPartition };
        let mut parts = Vec::with_capacity(topic_data.partition_data.len());
        for data in &topic_data.partition_data {
            if !(-1..=1).contains(&acks) {
                parts.push(error_response(data.index, Error::InvalidRequiredAcks, None));
                continue;
            }
            let partition = topic.as_ref().and_then(|t| t.partition(data.index));
            let Some(partition) = partition else {
                parts.push(error_response(data.index, unknown, None));
                continue;
            };
            if let Err(nl) = leadership.check(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id), data.index) {
                let leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(nl.leader)).with_leader_epoch(nl.epoch);
                parts.push(error_response(data.index, Error::NotLeaderOrFollower, None).with_current_leader(leader));
                continue;
            }
            let internal = [crate::coordinator::offsets_store::OFFSETS_TOPIC, crate::coordinator::transaction_coordinator::TXN_STATE_TOPIC];
            if internal.contains(&partition.topic.as_str()) {
                let msg = format!("clients cannot write to the internal topic {}", partition.topic);
                parts.push(error_response(data.index, Error::InvalidTopicException, Some(msg)));
                continue;
            }
            let min_isr = partition.log().config().min_insync_replicas;
            if acks == -1 && min_isr > 1 {
                // One node is the whole in-sync replica set (Kafka: NOT_ENOUGH_REPLICAS).
                let msg = format!("acks=all needs {min_isr} in-sync replicas (min.insync.replicas); this single node is 1");
                parts.push(error_response(data.index, Error::NotEnoughReplicas, Some(msg)));
                continue;
            }
            let (resp, flush) = append(partition, data, &ctx.state.metrics);
            if let Some(upto) = flush {
                flushes.push((partition.clone(), responses.len(), parts.len(), upto));
            }
            parts.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name.clone())
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(parts),
        );
    }
    for (partition, t, p, upto) in flushes {
        if let Err(e) = partition.flush_to(upto).await {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed; check the disk");
            let r = &mut responses[t].partition_responses[p];
            *r = error_response(r.index, Error::KafkaStorageError, Some(e.to_string()));
        }
    }
    if acks == 0 {
        return Outcome::NoResponse;
    }
    let endpoints = node_endpoints!(leadership, &ctx.conn.listener, NodeEndpoint);
    ctx.respond(&ProduceResponse::default().with_responses(responses).with_node_endpoints(endpoints))
}
