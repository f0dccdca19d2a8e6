//! OffsetCommit: checks each partition (the topic must exist, metadata must fit), then
//! commits the rest through the group coordinator in one write to `__consumer_offsets`.

use super::{code, Ctx, Error, Outcome};
use crate::coordinator::records::CommittedOffset;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

pub async fn handle(ctx: &Ctx<'_>, req: OffsetCommitRequest) -> Outcome {
    let groups = &ctx.state.groups;
    let now = groups.now();
    let max_metadata = groups.config().offset_metadata_max_bytes;
    // (topic index, partition, early error)
    let mut verdicts: Vec<Vec<(i32, Option<Error>)>> = Vec::new();
    let mut commits = Vec::new();
    for t in &req.topics {
        let topic = ctx.state.logs.topic(&t.name);
        let mut row = Vec::new();
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            let early = if topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                Some(Error::UnknownTopicOrPartition)
            } else if metadata.len() > max_metadata {
                Some(Error::OffsetMetadataTooLarge)
            } else {
                commits.push((
                    (t.name.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 6 { p.committed_leader_epoch } else { -1 },
                        metadata: metadata.to_string(),
                        commit_timestamp: now,
                    },
                ));
                None
            };
            row.push((p.partition_index, early));
        }
        verdicts.push(row);
    }
    tracing::debug!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), epoch = req.generation_id_or_member_epoch,
        partitions = ?commits.iter().map(|(tp, c)| (tp.1, c.offset)).collect::<Vec<_>>(), "offset commit");
    let stale = if ctx.version >= 9 { Error::StaleMemberEpoch } else { Error::IllegalGeneration };
    let result = groups
        .commit_offsets(&req.group_id, &req.member_id, req.group_instance_id.as_deref(), req.generation_id_or_member_epoch, stale, commits)
        .await;
    let topics = req
        .topics
        .iter()
        .zip(verdicts)
        .map(|(t, row)| {
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                row.into_iter()
                    .map(|(p, early)| {
                        let e = early.or(result.err());
                        OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code(e))
                    })
                    .collect(),
            )
        })
        .collect();
    ctx.respond(&OffsetCommitResponse::default().with_topics(topics))
}
