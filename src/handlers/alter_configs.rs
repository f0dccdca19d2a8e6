//! AlterConfigs (the whole set of a topic's overrides) and IncrementalAlterConfigs (SET,
//! DELETE, APPEND, SUBTRACT per key). Topic changes take effect on every partition at
//! once and persist in `topic-configs/`. Broker configuration is static here: altering it
//! is refused with a message saying where to set it.

use super::create_topics::topic_error;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
use super::{str_bytes, Ctx, Error, Outcome};
use crate::config::{defs, ConfigType};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use std::collections::BTreeMap;

type Overrides = BTreeMap<String, String>;
type Refusal = (Error, String);

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Applies `change` to the overrides of one resource.
fn alter(ctx: &Ctx<'_>, resource_type: i8, name: &str, validate_only: bool, change: impl FnOnce(&Overrides) -> Result<Overrides, Refusal>) -> Result<(), Refusal> {
    match resource_type {
        RESOURCE_TOPIC => {
            let logs = &ctx.state.logs;
            let topic = logs.topic(name).ok_or_else(|| (Error::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))?;
            if topic.is_internal() {
                return Err((Error::InvalidRequest, format!("'{name}' is an internal topic; its configuration is the broker's")));
            }
            let next = change(&topic.overrides)?;
            logs.alter_topic_config(name, next, validate_only).map_err(|e| (topic_error(&e), e.to_string()))
        }
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => Err((
            Error::InvalidRequest,
            "broker configuration cannot be changed at runtime on Ferrite; set it in the config file, KAFKA_* variables or --override, and restart".into(),
        )),
        other => Err((Error::InvalidRequest, format!("resource type {other} has no configuration"))),
    }
}

fn check_key(name: &str) -> Result<&'static defs::TopicKey, Refusal> {
    defs::topic_key(name).ok_or_else(|| (Error::InvalidConfig, format!("unknown topic configuration '{name}'")))
}

pub async fn handle_alter(ctx: &Ctx<'_>, req: AlterConfigsRequest) -> Outcome {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let result = alter(ctx, r.resource_type, &r.resource_name, req.validate_only, |_| {
                let mut next = Overrides::new();
                for c in &r.configs {
                    check_key(&c.name)?;
                    if let Some(v) = &c.value {
                        next.insert(c.name.to_string(), v.to_string());
                    }
                }
                Ok(next)
            });
            let (code, msg) = outcome(result);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    ctx.respond(&AlterConfigsResponse::default().with_responses(responses))
}

pub async fn handle_incremental(ctx: &Ctx<'_>, req: IncrementalAlterConfigsRequest) -> Outcome {
    let default_of = |key: &str| ctx.state.config.topic_default(key);
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let result = alter(ctx, r.resource_type, &r.resource_name, req.validate_only, |current| {
                let mut next = current.clone();
                for c in &r.configs {
                    let key = check_key(&c.name)?;
                    let name = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string());
                    match (c.config_operation, value) {
                        (SET, Some(v)) => {
                            next.insert(name, v);
                        }
                        (DELETE, _) => {
                            next.remove(&name);
                        }
                        (APPEND | SUBTRACT, Some(v)) if key.kind == ConfigType::List => {
                            let base = next.get(&name).cloned().unwrap_or_else(|| default_of(&name));
                            let mut items: Vec<String> = base.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                                if c.config_operation == APPEND && !items.iter().any(|i| i == item) {
                                    items.push(item.to_string());
                                } else if c.config_operation == SUBTRACT {
                                    items.retain(|i| i != item);
                                }
                            }
                            next.insert(name, items.join(","));
                        }
                        (APPEND | SUBTRACT, _) => {
                            return Err((Error::InvalidConfig, format!("'{name}' is not a list: APPEND and SUBTRACT do not apply")));
                        }
                        (SET, None) => return Err((Error::InvalidRequest, format!("SET of '{name}' without a value"))),
                        (op, _) => return Err((Error::InvalidRequest, format!("unknown config operation {op}"))),
                    }
                }
                Ok(next)
            });
            let (code, msg) = outcome(result);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    ctx.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn outcome(r: Result<(), Refusal>) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err((e, msg)) => (e.code(), Some(str_bytes(&msg))),
    }
}
