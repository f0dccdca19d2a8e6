//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets`
//! partition, a transactional id's the leader of its `__transaction_state` partition
//! (Kafka's hash of the key over the topic's partitions). On a node of several, the first
//! lookup has the controller create the internal topic (its replication factor at most the
//! brokers registered); until that partition has a live leader the answer is
//! COORDINATOR_NOT_AVAILABLE, and the client asks again. The lone node coordinates
//! everything itself. Share groups are not served.

use super::{str_bytes, Ctx, Error, Outcome};
use crate::coordinator::internal_topic::{internal_topic_configs, partition_for};
use crate::coordinator::offsets_store::OFFSETS_TOPIC;
use crate::coordinator::transaction_coordinator::TXN_STATE_TOPIC;
use crate::storage::TopicError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

pub const GROUP: i8 = 0;
pub const TRANSACTION: i8 = 1;

/// The coordinator's node, host and port.
type Located = (i32, String, u16);

/// The internal topic behind a key type: name, partitions, replication factor, segment size.
fn internal_topic(ctx: &Ctx<'_>, key_type: i8) -> Result<(&'static str, i32, i16, i64), (Error, String)> {
    let cfg = &ctx.state.config;
    match key_type {
        GROUP => Ok((OFFSETS_TOPIC, cfg.group.offsets_topic_partitions, cfg.group.offsets_topic_replication_factor, cfg.group.offsets_topic_segment_bytes)),
        TRANSACTION => Ok((TXN_STATE_TOPIC, cfg.txn.state_log_partitions, cfg.txn.state_log_replication_factor, cfg.txn.state_log_segment_bytes)),
        _ => Err((Error::InvalidRequest, "unknown coordinator key type".into())),
    }
}

/// Whether this broker coordinates `key` now (the lone node coordinates every key; on a
/// node of several, it leads the key's partition of the internal topic).
pub fn coordinates(ctx: &Ctx<'_>, key_type: i8, key: &str) -> bool {
    ctx.state.config.cluster.is_lone() || led_here(ctx, key_type, key).is_some()
}

/// The internal topic and partition of `key` when this broker leads it in the image.
fn led_here(ctx: &Ctx<'_>, key_type: i8, key: &str) -> Option<(&'static str, i32)> {
    let (topic, ..) = internal_topic(ctx, key_type).ok()?;
    let image = ctx.state.metadata.snapshot();
    let t = image.topic(topic)?;
    let p = partition_for(key, t.partitions.len() as i32);
    t.partitions.get(&p).is_some_and(|reg| reg.leader == ctx.node_id()).then_some((topic, p))
}

/// NOT_COORDINATOR when another broker coordinates `key` (the client looks again);
/// COORDINATOR_LOAD_IN_PROGRESS while this broker leads the key's partition in the image
/// but has not made its log yet (the internal topic was just created elsewhere), so that
/// no group or transaction state changes before it can be written.
pub fn elsewhere(ctx: &Ctx<'_>, key_type: i8, key: &str) -> Option<Error> {
    if ctx.state.config.cluster.is_lone() {
        return None; // the lone node coordinates every key and makes its topics on first use
    }
    match led_here(ctx, key_type, key) {
        None => Some(Error::NotCoordinator),
        Some((topic, p)) => ctx.state.logs.partition(topic, p).is_none().then_some(Error::CoordinatorLoadInProgress),
    }
}

async fn locate(ctx: &Ctx<'_>, key_type: i8, key: &str) -> Result<Located, (Error, String)> {
    let (topic, partitions, rf, segment_bytes) = internal_topic(ctx, key_type)?;
    let me = ctx.node_id();
    let adv = ctx.state.advertised_for(&ctx.conn.listener);
    if ctx.state.config.cluster.is_lone() {
        return Ok((me, adv.host.clone(), adv.port));
    }
    let unavailable = |why: String| (Error::CoordinatorNotAvailable, why);
    if ctx.state.metadata.snapshot().topic(topic).is_none() {
        let brokers = ctx.state.metadata.snapshot().unfenced_brokers().count().max(1);
        let rf = rf.min(brokers as i16);
        match ctx.state.topic_admin.create_topic(topic, partitions, rf, Vec::new(), internal_topic_configs(segment_bytes), false).await {
            Ok(_) | Err(TopicError::AlreadyExists(_)) => {}
            Err(e) => return Err(unavailable(format!("{topic} could not be created: {e}"))),
        }
    }
    let image = ctx.state.metadata.snapshot();
    let t = image.topic(topic).ok_or_else(|| unavailable(format!("{topic} is not created yet")))?;
    let p = partition_for(key, t.partitions.len() as i32);
    let leader = t.partitions.get(&p).map_or(-1, |reg| image.live_leader(reg));
    if leader == me {
        return Ok((me, adv.host.clone(), adv.port));
    }
    match image.endpoint(leader, &ctx.conn.listener) {
        Some(e) if leader >= 0 => Ok((leader, e.host.clone(), e.port)),
        _ => Err(unavailable(format!("{topic}-{p} has no live leader"))),
    }
}

pub async fn handle(ctx: &Ctx<'_>, req: FindCoordinatorRequest) -> Outcome {
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version < 4 {
        match locate(ctx, req.key_type, &req.key).await {
            Ok((node, host, port)) => {
                resp = resp.with_node_id(BrokerId(node)).with_host(str_bytes(&host)).with_port(port as i32);
            }
            Err((e, msg)) => {
                resp = resp.with_error_code(e.code()).with_node_id(BrokerId(-1)).with_port(-1);
                if ctx.version >= 1 {
                    resp.error_message = Some(str_bytes(&msg));
                }
            }
        }
    } else {
        for key in req.coordinator_keys {
            let c = match locate(ctx, req.key_type, &key).await {
                Ok((node, host, port)) => Coordinator::default().with_node_id(BrokerId(node)).with_host(str_bytes(&host)).with_port(port as i32),
                Err((e, msg)) => Coordinator::default()
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(&msg))),
            };
            resp.coordinators.push(c.with_key(key));
        }
    }
    ctx.respond(&resp)
}
