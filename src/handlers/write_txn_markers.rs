//! WriteTxnMarkers (inter-broker): a transaction coordinator on another broker ends a
//! transaction in the partitions this broker leads — a commit or abort marker appended
//! to each (durable per the flush settings before the answer), and for
//! `__consumer_offsets` the offsets committed inside the transaction made visible or
//! dropped, as Kafka's `ReplicaManager.appendRecords` of markers does.

use super::not_leader::Leadership;
use super::{Ctx, Error, Outcome};
use crate::coordinator::offsets_store::OFFSETS_TOPIC;
use kafka_protocol::messages::write_txn_markers_response::{WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

pub async fn handle(ctx: &Ctx<'_>, req: WriteTxnMarkersRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let mut leadership = Leadership::new(ctx);
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let (producer_id, epoch, commit) = (m.producer_id.0, m.producer_epoch, m.transaction_result);
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let topic = logs.topic(&t.name);
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for index in t.partition_indexes {
                let partition = topic.as_ref().and_then(|topic| topic.partition(index).map(|p| (topic.id, p.clone())));
                let error = match partition {
                    None => Some(Error::UnknownTopicOrPartition),
                    Some((id, _)) if leadership.check(id, index).is_err() => Some(Error::NotLeaderOrFollower),
                    Some((_, part)) => match part.append_marker(producer_id, epoch, commit, m.coordinator_epoch) {
                        Ok((offset, flush_due)) => {
                            let flushed = if flush_due { part.flush_to(offset + 1).await } else { Ok(()) };
                            if t.name.as_str() == OFFSETS_TOPIC {
                                ctx.state.groups.complete_txn(index, producer_id, commit);
                            }
                            flushed.err().map(|e| {
                                tracing::error!(topic = %part.topic, partition = index, error = %e, "fsync of a transaction marker failed; check the disk");
                                Error::KafkaStorageError
                            })
                        }
                        Err(e) => {
                            tracing::error!(topic = %part.topic, partition = index, error = %e, "writing a transaction marker failed; check the log directory");
                            Some(Error::KafkaStorageError)
                        }
                    },
                };
                partitions.push(WritableTxnMarkerPartitionResult::default().with_partition_index(index).with_error_code(super::code(error)));
            }
            topics.push(WritableTxnMarkerTopicResult::default().with_name(t.name).with_partitions(partitions));
        }
        markers.push(WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics));
    }
    ctx.respond(&WriteTxnMarkersResponse::default().with_markers(markers))
}
