//! DescribeProducers: the idempotent and transactional producers a partition knows, with
//! their epoch, last sequence and timestamp, and where their open transaction starts.

use super::{Ctx, Error, Outcome};
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

pub async fn handle(ctx: &Ctx<'_>, req: DescribeProducersRequest) -> Outcome {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = ctx.state.logs.topic(&t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let r = PartitionResponse::default().with_partition_index(index);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(index)) else {
                        return r.with_error_code(Error::UnknownTopicOrPartition.code());
                    };
                    let log = partition.log();
                    let producers = log
                        .producer_state()
                        .active()
                        .into_iter()
                        .map(|(pid, entry, txn_start)| {
                            let last = entry.batches.back();
                            ProducerState::default()
                                .with_producer_id(ProducerId(pid))
                                .with_producer_epoch(entry.epoch as i32)
                                .with_last_sequence(last.map(|b| b.last_seq).unwrap_or(-1))
                                .with_last_timestamp(last.map(|b| b.timestamp).unwrap_or(-1))
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(txn_start.unwrap_or(-1))
                        })
                        .collect();
                    r.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.respond(&DescribeProducersResponse::default().with_topics(topics))
}
