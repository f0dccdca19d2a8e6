//! DeleteTopics, by name (v0–5) or by topic id (v6+).

use super::create_topics::topic_error;
use super::{str_bytes, Ctx, Error, Outcome};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

pub async fn handle(ctx: &Ctx<'_>, req: DeleteTopicsRequest) -> Outcome {
    let logs = &ctx.state.logs;
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if ctx.version >= 6 {
        req.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n), uuid::Uuid::nil())).collect()
    };
    let mut responses = Vec::new();
    for (name, id) in wanted {
        let topic = match &name {
            Some(n) => logs.topic(n).ok_or(Error::UnknownTopicOrPartition),
            None => logs.topic_by_id(id).ok_or(Error::UnknownTopicId),
        };
        let result = DeletableTopicResult::default().with_name(name.clone()).with_topic_id(id);
        let outcome = match topic {
            Ok(_) if !ctx.state.config.delete_topic_enable => Err(Error::TopicDeletionDisabled),
            Ok(t) => ctx.state.topic_admin.delete_topic(&t.name).await.map(|_| t).map_err(|e| topic_error(&e)),
            Err(e) => Err(e),
        };
        responses.push(match outcome {
            Ok(t) => result.with_name(Some(TopicName(str_bytes(&t.name)))).with_topic_id(t.id),
            Err(e) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string()))),
        });
    }
    ctx.respond(&DeleteTopicsResponse::default().with_responses(responses))
}
