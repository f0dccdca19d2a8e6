//! DeleteRecords: moves partitions' log start offsets forward (whole segments below it are
//! deleted); the new log start offsets are checkpointed before the answer, so a restart
//! does not bring the records back, and a checkpoint that could not be written is answered
//! KAFKA_STORAGE_ERROR, never success.

use super::not_leader::Leadership;
use super::{code, Ctx, Error, Outcome};
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

pub async fn handle(ctx: &Ctx<'_>, req: DeleteRecordsRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let mut leadership = Leadership::new(ctx);
    let mut topics: Vec<DeleteRecordsTopicResult> = req
        .topics
        .iter()
        .map(|t| {
            let topic = logs.topic(&t.name);
            let internal = topic.as_ref().is_some_and(|t| t.is_internal());
            DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .map(|p| {
                        let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                        let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                            return r.with_error_code(Error::UnknownTopicOrPartition.code());
                        };
                        if internal {
                            return r.with_error_code(Error::PolicyViolation.code());
                        }
                        if leadership.check(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id), p.partition_index).is_err() {
                            return r.with_error_code(Error::NotLeaderOrFollower.code());
                        }
                        match partition.delete_records(p.offset) {
                            Ok(Some(start)) => r.with_low_watermark(start),
                            Ok(None) => r.with_error_code(Error::OffsetOutOfRange.code()),
                            Err(e) => {
                                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "deleting segments failed; check the log directory");
                                r.with_error_code(code(Some(Error::KafkaStorageError)))
                            }
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let logs = logs.clone();
    let written = tokio::task::spawn_blocking(move || logs.checkpoint()).await.map_err(std::io::Error::other).and_then(|r| r);
    if let Err(e) = written {
        // The new log start offsets are not durable: a crash now would bring the records
        // back. Success must not be answered for them; the client may retry.
        tracing::error!(error = %e, "writing checkpoint files failed; DeleteRecords answered KAFKA_STORAGE_ERROR; check the log directory");
        for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()).filter(|p| p.error_code == 0) {
            p.error_code = Error::KafkaStorageError.code();
            p.low_watermark = -1;
        }
    }
    ctx.respond(&DeleteRecordsResponse::default().with_topics(topics))
}
