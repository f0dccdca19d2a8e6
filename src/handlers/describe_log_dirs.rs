//! DescribeLogDirs: the one log directory, the sizes of the partitions this broker is a
//! replica of (per the metadata image), and (v4) its disk's total and usable bytes.

use super::{str_bytes, Ctx, Outcome};
use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

pub async fn handle(ctx: &Ctx<'_>, req: DescribeLogDirsRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let image = ctx.state.metadata.snapshot();
    let me = ctx.node_id();
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        Some(ts) => ts.into_iter().map(|t| (t.topic.to_string(), Some(t.partitions))).collect(),
        None => logs.topics().iter().map(|t| (t.name.clone(), None)).collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, parts)| {
            let topic = logs.topic(&name)?;
            let partitions = topic
                .partitions
                .iter()
                .filter(|p| parts.as_ref().is_none_or(|want| want.contains(&p.index)))
                // Only this broker's replicas (a partition the image does not know is local).
                .filter(|p| image.partition(topic.id, p.index).is_none_or(|reg| reg.replicas.contains(&me)))
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index)
                        .with_partition_size(p.log().size_bytes() as i64)
                        .with_offset_lag(0)
                })
                .collect();
            Some(DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions))
        })
        .collect();
    let dir = &ctx.state.config.log_dir;
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut result = DescribeLogDirsResult::default().with_log_dir(str_bytes(&absolute.display().to_string())).with_topics(topics);
    if ctx.version >= 4 {
        let (total, usable) = match nix::sys::statvfs::statvfs(&absolute) {
            Ok(s) => (
                (s.blocks() as i64).saturating_mul(s.fragment_size() as i64),
                (s.blocks_available() as i64).saturating_mul(s.fragment_size() as i64),
            ),
            Err(_) => (-1, -1),
        };
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    ctx.respond(&DescribeLogDirsResponse::default().with_results(vec![result]))
}
