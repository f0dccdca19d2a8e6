//! The brokers a client is told about (Metadata, DescribeCluster): the unfenced brokers of
//! the metadata image, each at its endpoint for the listener the client came in on, and
//! this broker itself in any case (clients that reached it can reach it). The controller
//! named is the quorum's leader when it is one of them (combined mode), else this broker
//! — clients reach controllers only through brokers, as in Kafka.

use super::Ctx;

pub struct LiveBroker {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

pub fn live_brokers(ctx: &Ctx<'_>) -> Vec<LiveBroker> {
    let me = ctx.node_id();
    let adv = ctx.state.advertised_for(&ctx.conn.listener);
    let image = ctx.state.quorum.image().borrow().clone();
    let mut out: Vec<LiveBroker> = image
        .unfenced_brokers()
        .filter(|b| b.id != me)
        .filter_map(|b| {
            let e = b.end_points.iter().find(|e| e.name == ctx.conn.listener)?;
            Some(LiveBroker { id: b.id, host: e.host.clone(), port: e.port, rack: b.rack.clone() })
        })
        .collect();
    out.push(LiveBroker { id: me, host: adv.host.clone(), port: adv.port, rack: ctx.state.config.cluster.rack.clone() });
    out.sort_by_key(|b| b.id);
    out
}

pub fn controller_id(ctx: &Ctx<'_>, brokers: &[LiveBroker]) -> i32 {
    match ctx.state.quorum.status().leader_id {
        Some(l) if brokers.iter().any(|b| b.id == l) => l,
        _ => ctx.node_id(),
    }
}
