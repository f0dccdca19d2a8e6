//! DescribeConfigs for topics and the broker: every key with its value, where it came
//! from, its synonyms and (v3+) its type and documentation, as Kafka's admin tools expect.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::config::defs;
use crate::broker_state::BrokerState;
use crate::storage::Topic;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

// org.apache.kafka.common.requests.DescribeConfigsResponse.ConfigSource
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// One described key before it is shaped into a response entry.
pub struct Described {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub synonyms: Vec<(String, Option<String>, i8)>,
    pub kind: defs::ConfigType,
    pub doc: &'static str,
}

/// Every topic-level key of `topic`: its override, else the broker's value, else Kafka's default.
pub fn describe_topic(state: &BrokerState, topic: &Topic) -> Vec<Described> {
    let broker = state.logs.broker_config();
    defs::TOPIC_KEYS
        .iter()
        .map(|k| {
            let mut synonyms = Vec::new();
            let override_value = topic.overrides.get(k.name).cloned();
            if let Some(v) = &override_value {
                synonyms.push((k.name.to_string(), Some(v.clone()), SOURCE_DYNAMIC_TOPIC));
            }
            let broker_explicit = k.broker_synonym.filter(|s| broker.is_explicit(s));
            let broker_source = broker_explicit.map(|s| broker.describe(s).1.code());
            if let (Some(s), Some(source)) = (broker_explicit, broker_source) {
                synonyms.push((s.to_string(), broker.get(s), source));
            }
            let default = broker.topic_default(k.name);
            if let Some(s) = k.broker_synonym {
                if broker_explicit.is_none() {
                    synonyms.push((s.to_string(), Some(default.clone()), SOURCE_DEFAULT));
                }
            }
            let (value, source) = match (override_value, broker_explicit) {
                (Some(v), _) => (Some(v), SOURCE_DYNAMIC_TOPIC),
                (None, Some(_)) => (Some(default), broker_source.unwrap_or(SOURCE_STATIC_BROKER)),
                (None, None) => (Some(default), SOURCE_DEFAULT),
            };
            Described { name: k.name, value, source, read_only: false, synonyms, kind: k.kind, doc: k.doc }
        })
        .collect()
}

fn describe_broker(state: &BrokerState) -> Vec<Described> {
    let config = state.logs.broker_config();
    defs::BROKER_KEYS
        .iter()
        .map(|k| {
            let (value, source) = config.describe(k.name);
            let synonyms = vec![(k.name.to_string(), value.clone(), source.code())];
            let read_only = !crate::config::is_dynamic_key(k.name);
            Described { name: k.name, value, source: source.code(), read_only, synonyms, kind: k.kind, doc: k.doc }
        })
        .collect()
}

fn shape(d: Described, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(d.name))
        .with_value(d.value.map(|v| str_bytes(&v)))
        .with_read_only(d.read_only)
        .with_config_source(d.source)
        .with_config_type(d.kind.code())
        .with_documentation(docs.then(|| str_bytes(d.doc)))
        .with_synonyms(if synonyms {
            d.synonyms
                .into_iter()
                .map(|(n, v, s)| {
                    DescribeConfigsSynonym::default().with_name(str_bytes(&n)).with_value(v.map(|v| str_bytes(&v))).with_source(s)
                })
                .collect()
        } else {
            Vec::new()
        })
}

pub async fn handle(ctx: &Ctx<'_>, req: DescribeConfigsRequest) -> Outcome {
    let state = ctx.state;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let described = match r.resource_type {
                RESOURCE_TOPIC => match state.logs.topic(&r.resource_name) {
                    Some(t) => Ok(describe_topic(state, &t)),
                    None => Err((Error::UnknownTopicOrPartition, format!("topic '{}' does not exist", &*r.resource_name))),
                },
                RESOURCE_BROKER => {
                    let name: &str = &r.resource_name;
                    if name.is_empty() || name == ctx.node_id().to_string() {
                        Ok(describe_broker(state))
                    } else {
                        Err((Error::InvalidRequest, format!("unexpected broker id {name}; this is node {}", ctx.node_id())))
                    }
                }
                RESOURCE_BROKER_LOGGER => Ok(Vec::new()),
                other => Err((Error::InvalidRequest, format!("unsupported resource type {other}"))),
            };
            match described {
                Ok(list) => {
                    let keys = r.configuration_keys;
                    let configs = list
                        .into_iter()
                        .filter(|d| keys.as_ref().is_none_or(|k| k.iter().any(|k| &**k == d.name)))
                        .map(|d| shape(d, req.include_synonyms, req.include_documentation))
                        .collect();
                    result.with_configs(configs)
                }
                Err((e, msg)) => result.with_error_code(e.code()).with_error_message(Some(str_bytes(&msg))),
            }
        })
        .collect();
    ctx.respond(&DescribeConfigsResponse::default().with_results(results))
}
