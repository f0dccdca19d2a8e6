//! OffsetFetch: committed offsets of one group (v1–7) or many (v8+), of the partitions
//! asked for or of all the group has (topics = null). Unknown offsets are -1.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::coordinator::group_coordinator::TopicPartition;
use crate::coordinator::records::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::*;
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use std::collections::BTreeMap;

type PartitionOffsets = Vec<(i32, Option<CommittedOffset>)>;

/// Offsets grouped by topic, in the order asked (or by name).
fn by_topic(rows: Vec<(TopicPartition, Option<CommittedOffset>)>) -> Vec<(String, PartitionOffsets)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, PartitionOffsets> = BTreeMap::new();
    for ((t, p), v) in rows {
        if !map.contains_key(&t) {
            order.push(t.clone());
        }
        map.entry(t).or_default().push((p, v));
    }
    order
        .into_iter()
        .map(|t| {
            let parts = map.remove(&t).unwrap_or_default();
            (t, parts)
        })
        .collect()
}

fn fields(v: &Option<CommittedOffset>) -> (i64, i32, String) {
    match v {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

pub async fn handle(ctx: &Ctx<'_>, req: OffsetFetchRequest) -> Outcome {
    let groups = &ctx.state.groups;
    let v = ctx.version;
    if v < 8 {
        if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
            // v2+ carry a top-level error; older clients see no offsets.
            return ctx.respond(&OffsetFetchResponse::default().with_error_code(if v >= 2 { e.code() } else { 0 }));
        }
        let wanted: Option<Vec<TopicPartition>> = req.topics.map(|ts| {
            ts.into_iter().flat_map(|t| t.partition_indexes.into_iter().map(move |p| (t.name.to_string(), p))).collect()
        });
        let rows = groups.fetch_offsets(&req.group_id, wanted.as_deref());
        let unstable = if v >= 7 && req.require_stable { groups.unstable_partitions(&req.group_id) } else { Vec::new() };
        let topics = by_topic(rows)
            .into_iter()
            .map(|(t, parts)| {
                OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(&t))).with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            let pending = unstable.iter().any(|(ut, up)| *ut == t && *up == p);
                            let (offset, epoch, metadata) = if pending { fields(&None) } else { fields(&c) };
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(if v >= 5 { epoch } else { -1 })
                                .with_metadata(Some(str_bytes(&metadata)))
                                .with_error_code(if pending { Error::UnstableOffsetCommit.code() } else { 0 })
                        })
                        .collect(),
                )
            })
            .collect();
        return ctx.respond(&OffsetFetchResponse::default().with_topics(topics));
    }
    let out = req
        .groups
        .into_iter()
        .map(|g| {
            let wanted: Option<Vec<TopicPartition>> = g.topics.map(|ts| {
                ts.into_iter().flat_map(|t| t.partition_indexes.into_iter().map(move |p| (t.name.to_string(), p))).collect()
            });
            if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &g.group_id) {
                return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(e.code());
            }
            if v >= 9 && g.member_epoch >= 0 {
                let member = g.member_id.as_deref().unwrap_or("");
                if let Some(e) = groups.validate_offset_fetch(&g.group_id, member, g.member_epoch) {
                    tracing::debug!(group = %g.group_id.as_str(), member, epoch = g.member_epoch, error = ?e, "offset fetch refused");
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(e.code());
                }
            }
            let rows = groups.fetch_offsets(&g.group_id, wanted.as_deref());
            let unstable = if req.require_stable { groups.unstable_partitions(&g.group_id) } else { Vec::new() };
            tracing::debug!(group = %g.group_id.as_str(), member = ?g.member_id, epoch = g.member_epoch,
                offsets = ?rows.iter().map(|((_, p), c)| (*p, c.as_ref().map(|c| c.offset))).collect::<Vec<_>>(), "offset fetch");
            OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(
                by_topic(rows)
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default().with_name(TopicName(str_bytes(&t))).with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, c)| {
                                    let pending = unstable.iter().any(|(ut, up)| *ut == t && *up == p);
                                    let (offset, epoch, metadata) = if pending { fields(&None) } else { fields(&c) };
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(&metadata)))
                                        .with_error_code(if pending { Error::UnstableOffsetCommit.code() } else { 0 })
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    ctx.respond(&OffsetFetchResponse::default().with_groups(out))
}
