//! CreateTopics: partitions and configs validated as Kafka does; one node means a
//! replication factor of 1 and manual assignments naming only this node.

use super::describe_configs::describe_topic;
use super::{str_bytes, Ctx, Error, Outcome};
use crate::storage::TopicError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::{BTreeMap, HashMap};

pub fn topic_error(e: &TopicError) -> Error {
    match e {
        TopicError::AlreadyExists(_) => Error::TopicAlreadyExists,
        TopicError::InvalidName(_) => Error::InvalidTopicException,
        TopicError::InvalidPartitions(_) => Error::InvalidPartitions,
        TopicError::InvalidReplicationFactor(_) => Error::InvalidReplicationFactor,
        TopicError::InvalidConfig(_) => Error::InvalidConfig,
        TopicError::Unknown(_) => Error::UnknownTopicOrPartition,
        TopicError::ResourceLimit(_) => Error::PolicyViolation,
        TopicError::Io(_) => Error::KafkaStorageError,
    }
}

fn plan(ctx: &Ctx<'_>, t: &CreatableTopic) -> Result<(i32, BTreeMap<String, String>), (Error, String)> {
    let node = ctx.node_id();
    let (partitions, rf) = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((Error::InvalidRequest, "give either assignments or num_partitions/replication_factor".into()));
        }
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err((Error::InvalidReplicaAssignment, "partition indexes must be 0..n without gaps".into()));
        }
        for a in &t.assignments {
            if a.broker_ids.iter().map(|b| b.0).ne([node]) {
                return Err((Error::InvalidReplicaAssignment, format!("only broker {node} exists; each partition must be assigned to it alone")));
            }
        }
        (t.assignments.len() as i32, 1)
    } else {
        let p = if t.num_partitions == -1 { ctx.state.config.num_partitions } else { t.num_partitions };
        let rf = if t.replication_factor == -1 { ctx.state.config.default_replication_factor } else { t.replication_factor };
        (p, rf)
    };
    if rf <= 0 {
        return Err((Error::InvalidReplicationFactor, "replication factor must be larger than 0".into()));
    }
    if rf > 1 {
        return Err((Error::InvalidReplicationFactor, format!("Replication factor: {rf} larger than available brokers: 1.")));
    }
    let mut overrides = BTreeMap::new();
    for c in &t.configs {
        match &c.value {
            Some(v) => {
                overrides.insert(c.name.to_string(), v.to_string());
            }
            None => return Err((Error::InvalidConfig, format!("null value for config {}", &*c.name))),
        }
    }
    Ok((partitions, overrides))
}

pub async fn handle(ctx: &Ctx<'_>, req: CreateTopicsRequest) -> Outcome {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.to_string()).or_default() += 1;
    }
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let result = CreatableTopicResult::default().with_name(t.name.clone()).with_num_partitions(-1).with_replication_factor(-1);
        if seen[&t.name.to_string()] > 1 {
            topics.push(
                result
                    .with_error_code(Error::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("topic appears more than once in the request"))),
            );
            continue;
        }
        let created = match plan(ctx, t) {
            Ok((partitions, overrides)) => {
                // Through the metadata log; directories and files are made on the blocking
                // pool: a topic of thousands of partitions must not hold a serving thread.
                ctx.state
                    .topic_admin
                    .create_topic(t.name.as_str(), partitions, overrides, req.validate_only)
                    .await
                    .map_err(|e| (topic_error(&e), e.to_string()))
            }
            Err(e) => Err(e),
        };
        topics.push(match created {
            Ok(topic) => {
                let configs = describe_topic(ctx.state, &topic)
                    .into_iter()
                    .map(|d| {
                        CreatableTopicConfigs::default()
                            .with_name(str_bytes(d.name))
                            .with_value(d.value.map(|v| str_bytes(&v)))
                            .with_config_source(d.source)
                    })
                    .collect();
                result
                    .with_topic_id(topic.id)
                    .with_num_partitions(if req.validate_only { plan(ctx, t).map(|p| p.0).unwrap_or(-1) } else { topic.partitions.len() as i32 })
                    .with_replication_factor(1)
                    .with_configs(Some(configs))
            }
            Err((e, msg)) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&msg))),
        });
    }
    ctx.respond(&CreateTopicsResponse::default().with_topics(topics))
}
