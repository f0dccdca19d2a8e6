//! OffsetForLeaderEpoch: where a leader epoch ended in this partition's log, from its
//! `leader-epoch-checkpoint` (Kafka's `endOffsetForEpoch`): librdkafka ≥ 2.1 and the Java
//! consumer validate their position with it after a leader change (KIP-320), and
//! followers find their truncation point with it (KIP-279). Partitions another broker
//! leads are NOT_LEADER_OR_FOLLOWER.

use super::not_leader::Leadership;
use super::{check_leader_epoch, Ctx, Error, Outcome};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub async fn handle(ctx: &Ctx<'_>, req: OffsetForLeaderEpochRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let mut leadership = Leadership::new(ctx);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = logs.topic(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = EpochEndOffset::default().with_partition(p.partition);
                    let partition = topic.as_ref().and_then(|topic| topic.partition(p.partition));
                    let leader = leadership.check(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id), p.partition);
                    let failed = |e: Error| resp.clone().with_error_code(e.code()).with_leader_epoch(-1).with_end_offset(-1);
                    let epoch_error = match leader {
                        Ok(epoch) => check_leader_epoch(p.current_leader_epoch, epoch),
                        Err(_) => Some(Error::NotLeaderOrFollower),
                    };
                    match (partition, epoch_error) {
                        (None, _) => failed(Error::UnknownTopicOrPartition),
                        (_, Some(e)) => failed(e),
                        (Some(part), None) => {
                            let (epoch, end) = part.log().end_offset_for_epoch(p.leader_epoch);
                            resp.with_leader_epoch(epoch).with_end_offset(end)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    ctx.respond(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
