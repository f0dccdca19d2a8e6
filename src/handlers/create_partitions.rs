//! CreatePartitions: grow a topic; new partitions start empty on this node.

use super::create_topics::topic_error;
use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

pub async fn handle(ctx: &Ctx<'_>, req: CreatePartitionsRequest) -> Outcome {
    let node = ctx.node_id();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let bad_assignment = t
            .assignments
            .as_ref()
            .is_some_and(|a| a.iter().any(|a| a.broker_ids.iter().map(|b| b.0).ne([node])));
        let outcome = if bad_assignment {
            Err((Error::InvalidReplicaAssignment, format!("only broker {node} exists")))
        } else {
            // Through the metadata log, files made on the blocking pool (as CreateTopics).
            ctx.state.topic_admin.create_partitions(t.name.as_str(), t.count, req.validate_only).await.map_err(|e| (topic_error(&e), e.to_string()))
        };
        results.push(match outcome {
            Ok(()) => result,
            Err((e, msg)) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&msg))),
        });
    }
    ctx.respond(&CreatePartitionsResponse::default().with_results(results))
}
