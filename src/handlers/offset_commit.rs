//! OffsetCommit: checks each partition (the topic must exist, metadata must fit), then
//! commits the rest through the group coordinator in one write to `__consumer_offsets`.

use super::{code, Ctx, Error, Outcome};
use crate::coordinator::group_coordinator::TopicPartition;
use crate::coordinator::records::CommittedOffset;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

/// One partition's offset as a commit request carries it.
pub struct Offered<'a> {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<&'a str>,
}

/// Per partition of a commit request: an early error (unknown partition, metadata too
/// large), and the offsets that pass, to commit. Shared with TxnOffsetCommit.
pub type Verdicts = Vec<Vec<(i32, Option<Error>)>>;

pub fn check_offsets<'a>(ctx: &Ctx<'_>, topics: impl Iterator<Item = (&'a str, Vec<Offered<'a>>)>) -> (Verdicts, Vec<(TopicPartition, CommittedOffset)>) {
    let groups = &ctx.state.groups;
    let now = groups.now();
    let max_metadata = groups.config().offset_metadata_max_bytes;
    let mut verdicts = Vec::new();
    let mut commits = Vec::new();
    for (name, partitions) in topics {
        let topic = ctx.state.logs.topic(name);
        let mut row = Vec::new();
        for p in partitions {
            let metadata = p.metadata.unwrap_or("");
            let early = if topic.as_ref().and_then(|t| t.partition(p.partition)).is_none() {
                Some(Error::UnknownTopicOrPartition)
            } else if metadata.len() > max_metadata {
                Some(Error::OffsetMetadataTooLarge)
            } else {
                let value = CommittedOffset { offset: p.offset, leader_epoch: p.leader_epoch, metadata: metadata.to_string(), commit_timestamp: now };
                commits.push(((name.to_string(), p.partition), value));
                None
            };
            row.push((p.partition, early));
        }
        verdicts.push(row);
    }
    (verdicts, commits)
}

/// The offsets an OffsetCommit or TxnOffsetCommit request offers, per topic (the two
/// requests' generated types share these field names); leader epochs are sent from
/// version `$epoch_since`.
macro_rules! offered {
    ($ctx:expr, $topics:expr, $epoch_since:expr) => {
        $topics.iter().map(|t| {
            let offered = t
                .partitions
                .iter()
                .map(|p| Offered {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if $ctx.version >= $epoch_since { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_deref(),
                })
                .collect();
            (t.name.as_str(), offered)
        })
    };
}
pub(super) use offered;

pub async fn handle(ctx: &Ctx<'_>, req: OffsetCommitRequest) -> Outcome {
    let groups = &ctx.state.groups;
    let (verdicts, commits) = check_offsets(
        ctx,
        offered!(ctx, req.topics, 6),
    );
    tracing::debug!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), epoch = req.generation_id_or_member_epoch,
        partitions = ?commits.iter().map(|(tp, c)| (tp.1, c.offset)).collect::<Vec<_>>(), "offset commit");
    let stale = if ctx.version >= 9 { Error::StaleMemberEpoch } else { Error::IllegalGeneration };
    let result = match super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        Some(e) => Err(e),
        None => groups
            .commit_offsets(&req.group_id, &req.member_id, req.group_instance_id.as_deref(), req.generation_id_or_member_epoch, stale, commits)
            .await,
    };
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
