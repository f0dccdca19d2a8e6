//! CreateTopics: partitions, replication and configs validated as Kafka does, then
//! written by the active controller, which places the replicas over the unfenced brokers
//! (or takes the manual assignments, checked against the registered brokers).

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
        TopicError::InvalidReplicaAssignment(_) => Error::InvalidReplicaAssignment,
        TopicError::InvalidConfig(_) => Error::InvalidConfig,
        TopicError::Unknown(_) => Error::UnknownTopicOrPartition,
        TopicError::ResourceLimit(_) => Error::PolicyViolation,
        TopicError::NotController(_) => Error::NotController,
        TopicError::TimedOut(_) => Error::RequestTimedOut,
        TopicError::Io(_) => Error::KafkaStorageError,
    }
}

/// What a topic of the request asks for: partitions, replication factor, manual assignments.
struct Plan {
    partitions: i32,
    rf: i16,
    assignments: Vec<Vec<i32>>,
    overrides: BTreeMap<String, String>,
}

fn plan(ctx: &Ctx<'_>, t: &CreatableTopic) -> Result<Plan, (Error, String)> {
    let (partitions, rf, assignments) = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((Error::InvalidRequest, "give either assignments or num_partitions/replication_factor".into()));
        }
        let mut sorted: Vec<&_> = t.assignments.iter().collect();
        sorted.sort_by_key(|a| a.partition_index);
        if sorted.iter().enumerate().any(|(i, a)| a.partition_index != i as i32) {
            return Err((Error::InvalidReplicaAssignment, "partition indexes must be 0..n without gaps".into()));
        }
        let assignments: Vec<Vec<i32>> = sorted.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
        (assignments.len() as i32, assignments[0].len() as i16, assignments)
    } else {
        let p = if t.num_partitions == -1 { ctx.state.config.num_partitions } else { t.num_partitions };
        let rf = if t.replication_factor == -1 { ctx.state.config.default_replication_factor } else { t.replication_factor };
        (p, rf, Vec::new())
    };
    if rf <= 0 {
        return Err((Error::InvalidReplicationFactor, "replication factor must be larger than 0".into()));
    }
    let image = ctx.state.quorum.image().borrow().clone();
    if let Some(b) = assignments.iter().flatten().find(|b| !image.brokers.contains_key(b)) {
        return Err((Error::InvalidReplicaAssignment, format!("broker {b} in the replica assignment is not registered")));
    }
    let brokers = image.unfenced_brokers().count();
    if assignments.is_empty() && rf as usize > brokers {
        let msg = format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
        );
        return Err((Error::InvalidReplicationFactor, msg));
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
    Ok(Plan { partitions, rf, assignments, overrides })
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
            Ok(p) => {
                // Through the metadata log; directories and files are made on the blocking
                // pool: a topic of thousands of partitions must not hold a serving thread.
                let rf = p.rf;
                ctx.state
                    .topic_admin
                    .create_topic(t.name.as_str(), p.partitions, p.rf, p.assignments, p.overrides, req.validate_only)
                    .await
                    .map(|topic| (topic, rf))
                    .map_err(|e| (topic_error(&e), e.to_string()))
            }
            Err(e) => Err(e),
        };
        topics.push(match created {
            Ok((topic, rf)) => {
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
                    .with_num_partitions(if req.validate_only { plan(ctx, t).map(|p| p.partitions).unwrap_or(-1) } else { topic.partitions.len() as i32 })
                    .with_replication_factor(rf)
                    .with_configs(Some(configs))
            }
            Err((e, msg)) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&msg))),
        });
    }
    ctx.respond(&CreateTopicsResponse::default().with_topics(topics))
}
