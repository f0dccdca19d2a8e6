//! AlterConfigs (the whole set of a resource's overrides) and IncrementalAlterConfigs
//! (SET, DELETE, APPEND, SUBTRACT per key), for topics and for the broker.
//!
//! Topic changes take effect on every partition at once and persist in `topic-configs/`.
//! Broker changes (resource "0" for this broker, "" for the cluster-wide default) may set
//! the topic defaults (`log.retention.ms`, `log.segment.bytes`, `compression.type`…, Kafka's
//! dynamic log configs): they apply at once to every topic without its own override and
//! persist in `dynamic-configs/`. Other broker keys are static, and refused with a message
//! saying where to set them.

use super::create_topics::topic_error;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
use super::{str_bytes, Ctx, Error, Outcome};
use crate::config::{defs, is_dynamic_key, ConfigType};
use crate::storage::Topic;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use std::collections::BTreeMap;
use std::sync::Arc;

type Overrides = BTreeMap<String, String>;
type Refusal = (Error, String);

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// The resource a change is for.
enum Target {
    Topic(Arc<Topic>),
    Broker { for_default: bool },
}

impl Target {
    fn find(ctx: &Ctx<'_>, resource_type: i8, name: &str) -> Result<Target, Refusal> {
        match resource_type {
            RESOURCE_TOPIC => {
                let topic = ctx.state.logs.topic(name).ok_or_else(|| (Error::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))?;
                if topic.is_internal() {
                    return Err((Error::InvalidRequest, format!("'{name}' is an internal topic; its configuration is the broker's")));
                }
                Ok(Target::Topic(topic))
            }
            RESOURCE_BROKER if name.is_empty() => Ok(Target::Broker { for_default: true }),
            RESOURCE_BROKER if name == ctx.node_id().to_string() => Ok(Target::Broker { for_default: false }),
            RESOURCE_BROKER => Err((Error::InvalidRequest, format!("this node is broker {}, not '{name}'", ctx.node_id()))),
            RESOURCE_BROKER_LOGGER => Err((Error::InvalidRequest, "log levels are set with RUST_LOG / FERRITE_LOG at start".into())),
            other => Err((Error::InvalidRequest, format!("resource type {other} has no configuration"))),
        }
    }

    /// The overrides the change starts from.
    fn current(&self, ctx: &Ctx<'_>) -> Overrides {
        match self {
            Target::Topic(t) => t.overrides.clone(),
            Target::Broker { for_default: true } => ctx.state.logs.broker_config().dynamic_default.clone(),
            Target::Broker { for_default: false } => ctx.state.logs.broker_config().dynamic_broker.clone(),
        }
    }

    /// The type of a key this resource may set.
    fn kind(&self, name: &str) -> Result<ConfigType, Refusal> {
        match self {
            Target::Topic(_) => defs::topic_key(name).map(|k| k.kind).ok_or_else(|| (Error::InvalidConfig, format!("unknown topic configuration '{name}'"))),
            Target::Broker { .. } => match defs::broker_key(name) {
                Some(k) if is_dynamic_key(name) => Ok(k.kind),
                Some(_) => Err((
                    Error::InvalidRequest,
                    format!("'{name}' cannot be changed at runtime; set it in the config file, KAFKA_* variables or --override, and restart"),
                )),
                None => Err((Error::InvalidRequest, format!("unknown broker configuration '{name}'"))),
            },
        }
    }

    /// The value a list key has before the change (for APPEND/SUBTRACT).
    fn value_of(&self, ctx: &Ctx<'_>, current: &Overrides, name: &str) -> String {
        if let Some(v) = current.get(name) {
            return v.clone();
        }
        match self {
            Target::Topic(_) => ctx.state.logs.broker_config().topic_default(name),
            Target::Broker { .. } => ctx.state.logs.broker_config().get(name).unwrap_or_default(),
        }
    }

    async fn apply(&self, ctx: &Ctx<'_>, next: Overrides, validate_only: bool) -> Result<(), Refusal> {
        let result = match self {
            Target::Topic(t) => ctx.state.topic_admin.alter_topic_config(&t.name, next, validate_only).await,
            Target::Broker { for_default } => ctx.state.topic_admin.alter_broker_config(ctx.node_id(), *for_default, next, validate_only).await,
        };
        result.map_err(|e| (topic_error(&e), e.to_string()))
    }
}

/// Finds the resource and builds its next overrides with `change` (applied afterwards).
fn alter(
    ctx: &Ctx<'_>,
    resource_type: i8,
    name: &str,
    change: impl FnOnce(&Target, Overrides) -> Result<Overrides, Refusal>,
) -> Result<(Target, Overrides), Refusal> {
    let target = Target::find(ctx, resource_type, name)?;
    let next = change(&target, target.current(ctx))?;
    Ok((target, next))
}

/// A resource's next overrides, or why there are none.
type Planned = Result<(Target, Overrides), Refusal>;

async fn apply(ctx: &Ctx<'_>, planned: Planned, validate_only: bool) -> Result<(), Refusal> {
    let (target, next) = planned?;
    target.apply(ctx, next, validate_only).await
}

/// Applies each planned change in request order and builds its response entry.
async fn apply_all<R, T>(
    ctx: &Ctx<'_>,
    planned: Vec<(&R, Planned)>,
    validate_only: bool,
    respond: impl Fn(&R, i16, Option<kafka_protocol::protocol::StrBytes>) -> T,
) -> Vec<T> {
    let mut out = Vec::with_capacity(planned.len());
    for (r, plan) in planned {
        let (code, msg) = outcome(apply(ctx, plan, validate_only).await);
        out.push(respond(r, code, msg));
    }
    out
}

pub async fn handle_alter(ctx: &Ctx<'_>, req: AlterConfigsRequest) -> Outcome {
    let planned: Vec<_> = req
        .resources
        .iter()
        .map(|r| {
            let result = alter(ctx, r.resource_type, &r.resource_name, |target, _| {
                let mut next = Overrides::new();
                for c in &r.configs {
                    target.kind(&c.name)?;
                    if let Some(v) = &c.value {
                        next.insert(c.name.to_string(), v.to_string());
                    }
                }
                Ok(next)
            });
            (r, result)
        })
        .collect();
    let responses = apply_all(ctx, planned, req.validate_only, |r, code, msg| {
        alter_configs_response::AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(msg)
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone())
    })
    .await;
    ctx.respond(&AlterConfigsResponse::default().with_responses(responses))
}

pub async fn handle_incremental(ctx: &Ctx<'_>, req: IncrementalAlterConfigsRequest) -> Outcome {
    let planned: Vec<_> = req
        .resources
        .iter()
        .map(|r| {
            let result = alter(ctx, r.resource_type, &r.resource_name, |target, current| {
                let mut next = current;
                for c in &r.configs {
                    let kind = target.kind(&c.name)?;
                    let name = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string());
                    match (c.config_operation, value) {
                        (SET, Some(v)) => {
                            next.insert(name, v);
                        }
                        (DELETE, _) => {
                            next.remove(&name);
                        }
                        (APPEND | SUBTRACT, Some(v)) if kind == ConfigType::List => {
                            let base = target.value_of(ctx, &next, &name);
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
            (r, result)
        })
        .collect();
    let responses = apply_all(ctx, planned, req.validate_only, |r, code, msg| {
        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(msg)
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone())
    })
    .await;
    ctx.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn outcome(r: Result<(), Refusal>) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err((e, msg)) => (e.code(), Some(str_bytes(&msg))),
    }
}
