//! ListOffsets: earliest (-2), latest (-1), max-timestamp (-3, KIP-734), earliest-local
//! (-4) and latest-tiered (-5, KIP-1005), and the first offset at or after a timestamp.

use super::not_leader::Leadership;
use super::{check_leader_epoch, Ctx, Error, Outcome};
use crate::storage::Partition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

fn lookup(p: &Partition, ts: i64, read_committed: bool) -> Result<(i64, i64), Error> {
    let offsets = p.offsets();
    let found = match ts {
        // A read_committed consumer's end is the last stable offset.
        LATEST if read_committed => Some((offsets.last_stable, -1)),
        LATEST => Some((offsets.high_watermark, -1)),
        EARLIEST | EARLIEST_LOCAL => Some((offsets.log_start, -1)),
        LATEST_TIERED => None,
        MAX_TIMESTAMP => p.log().max_timestamp_offset().map_err(|_| Error::KafkaStorageError)?,
        ts if ts >= 0 => p.log().offset_for_timestamp(ts).map_err(|_| Error::KafkaStorageError)?,
        _ => return Err(Error::InvalidRequest),
    };
    Ok(found.unwrap_or((-1, -1)))
}

pub async fn handle(ctx: &Ctx<'_>, req: ListOffsetsRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let version = ctx.version;
    let mut leadership = Leadership::new(ctx);
    let read_committed = req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = logs.topic(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let partition = topic.as_ref().and_then(|topic| topic.partition(p.partition_index));
                    let leader = leadership.check(topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id), p.partition_index);
                    let result = match (partition, leader) {
                        (None, _) => Err(Error::UnknownTopicOrPartition),
                        (_, Err(_)) => Err(Error::NotLeaderOrFollower),
                        (Some(part), Ok(epoch)) => match check_leader_epoch(p.current_leader_epoch, epoch) {
                            Some(e) => Err(e),
                            None => lookup(part, p.timestamp, read_committed).map(|(o, t)| (o, t, epoch)),
                        },
                    };
                    match result {
                        // The leader epoch field exists from v4 on.
                        Ok((offset, timestamp, epoch)) => resp.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(
                            if offset >= 0 && version >= 4 { epoch } else { -1 },
                        ),
                        Err(e) => resp.with_error_code(e.code()).with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.respond(&ListOffsetsResponse::default().with_topics(topics))
}
