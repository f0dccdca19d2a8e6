//! Partitions this broker does not lead, per the metadata image: they are answered
//! NOT_LEADER_OR_FOLLOWER, and Produce and Fetch also name the leader and where it listens
//! (KIP-951), so a client moves on without waiting for a Metadata round trip.

use super::Ctx;
use crate::cluster::image::MetadataImage;
use crate::cluster::metadata_cache::NotLeader;
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// One request's view of leadership: a snapshot of the image, and the leaders named so far.
pub struct Leadership {
    image: Arc<MetadataImage>,
    me: i32,
    named: BTreeSet<i32>,
}

/// A broker's address for KIP-951's `node_endpoints`.
pub struct Endpoint {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

impl Leadership {
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Leadership { image: ctx.state.metadata.snapshot(), me: ctx.node_id(), named: BTreeSet::new() }
    }

    /// Ok with the leader epoch when this broker leads the partition; else who does,
    /// remembered for `endpoints`.
    pub fn check(&mut self, topic_id: Uuid, partition: i32) -> Result<i32, NotLeader> {
        let r = self.image.leader_epoch_if_leader(self.me, topic_id, partition);
        if let Err(nl) = r {
            if nl.leader >= 0 {
                self.named.insert(nl.leader);
            }
        }
        r
    }

    /// The endpoints, on the client's listener, of every leader `check` named.
    pub fn endpoints(&self, listener: &str) -> Vec<Endpoint> {
        self.named
            .iter()
            .filter_map(|id| {
                let e = self.image.endpoint(*id, listener)?;
                let rack = self.image.brokers.get(id).and_then(|b| b.rack.clone());
                Some(Endpoint { id: *id, host: e.host.clone(), port: e.port, rack })
            })
            .collect()
    }
}

/// KIP-951's `node_endpoints` as the response type `$endpoint` (Produce's and Fetch's are
/// distinct types of one shape) for every leader `$leadership` named.
macro_rules! node_endpoints {
    ($leadership:expr, $listener:expr, $endpoint:ty) => {
        $leadership
            .endpoints($listener)
            .into_iter()
            .map(|e| {
                <$endpoint>::default()
                    .with_node_id(kafka_protocol::messages::BrokerId(e.id))
                    .with_host(super::str_bytes(&e.host))
                    .with_port(e.port as i32)
                    .with_rack(e.rack.as_deref().map(super::str_bytes))
            })
            .collect()
    };
}
pub(crate) use node_endpoints;
