//! OffsetDelete: removes a group's committed offsets of topics it no longer consumes.

use super::{code, Ctx, Outcome};
use crate::coordinator::group_coordinator::TopicPartition;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub async fn handle(ctx: &Ctx<'_>, req: OffsetDeleteRequest) -> Outcome {
    if let Some(e) = super::find_coordinator::elsewhere(ctx, super::find_coordinator::GROUP, &req.group_id) {
        return ctx.respond(&OffsetDeleteResponse::default().with_error_code(e.code()));
    }
    let wanted: Vec<TopicPartition> =
        req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index))).collect();
    let resp = match ctx.state.groups.delete_offsets(&req.group_id, &wanted).await {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(results) => {
            let mut it = results.into_iter();
            OffsetDeleteResponse::default().with_topics(
                req.topics
                    .iter()
                    .map(|t| {
                        OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let (_, e) = it.next().expect("one result per partition");
                                    OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code(e))
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }
    };
    ctx.respond(&resp)
}
