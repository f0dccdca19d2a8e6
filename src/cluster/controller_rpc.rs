//! What travels on the controller listener: the quorum's own messages and the brokers'
//! calls to the active controller (Kafka's BrokerRegistration, BrokerHeartbeat,
//! AllocateProducerIds, and the admin requests Kafka's brokers forward: CreateTopics,
//! CreatePartitions, DeleteTopics, IncrementalAlterConfigs), each a `rpc` frame. The
//! server half answers them; `ControllerChannel` is a broker's way to the active
//! controller, in-process when this node is it.

use super::controller::{ControllerError, HeartbeatReply, QuorumController, Registration};
use super::controller_topics::AdoptedTopic;
use super::image::MetadataImage;
use super::quorum::{MetadataQuorum, QuorumStatus};
use super::raft::network::{self, Envelope, RaftRequest, RaftResponse};
use super::raft::TypeConfig;
use super::rpc::{read_frame, write_frame};
use openraft::Raft;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
pub enum ControllerRequest {
    Raft(RaftRequest),
    Register(Registration),
    Heartbeat { broker_id: i32, broker_epoch: i64 },
    AllocateProducerIds { broker_id: i32, floor: i64, size: i64 },
    /// Replicas placed by the controller, or as `assignments` give them (one list per partition).
    CreateTopic { name: String, id: Uuid, partitions: i32, replication_factor: i16, assignments: Vec<Vec<i32>>, configs: BTreeMap<String, String> },
    CreatePartitions { name: String, count: i32 },
    DeleteTopic { name: String, id: Option<Uuid> },
    SetTopicConfigs { name: String, configs: BTreeMap<String, String> },
    SetBrokerConfigs { name: String, configs: BTreeMap<String, String> },
    AdoptTopics { broker: i32, topics: Vec<AdoptedTopic>, migration: bool, broker_configs: Vec<(String, BTreeMap<String, String>)> },
    /// A broker-only node asks for the metadata image if newer than offset `after`
    /// (held up to `observer::FETCH_WAIT` until one is).
    FetchImage { node_id: i32, after: u64 },
    /// A broker-only node that knows only `controller.quorum.bootstrap.servers` asks who
    /// the voters are (`voters::resolve`).
    DescribeVoters,
}

#[derive(Serialize, Deserialize)]
pub enum ControllerResponse {
    Raft(Box<RaftResponse>),
    Register(Result<i64, ControllerError>),
    Heartbeat(Result<HeartbeatReply, ControllerError>),
    AllocateProducerIds(Result<(i64, i64), ControllerError>),
    /// A metadata change: the offset of the batch that holds it.
    Written(Result<u64, ControllerError>),
    /// The quorum as this voter sees it, and its image when newer than asked.
    Image { status: QuorumStatus, image: Option<MetadataImage> },
    /// The quorum's voters: node id → controller listener address.
    Voters(BTreeMap<i32, String>),
}

/// Answers a broker's call with this node's controller (every request but the quorum's own).
async fn dispatch(controller: &QuorumController, req: ControllerRequest) -> ControllerResponse {
    use ControllerRequest as Q;
    use ControllerResponse::*;
    match req {
        Q::Raft(_) | Q::DescribeVoters => Written(Err(ControllerError::Failed("a quorum message outside the quorum".into()))),
        Q::Register(r) => Register(controller.register(r).await),
        Q::Heartbeat { broker_id, broker_epoch } => Heartbeat(controller.heartbeat(broker_id, broker_epoch).await),
        Q::AllocateProducerIds { broker_id, floor, size } => AllocateProducerIds(controller.allocate_producer_ids(broker_id, floor, size).await),
        Q::CreateTopic { name, id, partitions, replication_factor, assignments, configs } => {
            Written(controller.create_topic(&name, id, partitions, replication_factor, assignments, configs).await)
        }
        Q::CreatePartitions { name, count } => Written(controller.create_partitions(&name, count).await),
        Q::DeleteTopic { name, id } => Written(controller.delete_topic(&name, id).await),
        Q::SetTopicConfigs { name, configs } => Written(controller.set_topic_configs(&name, configs).await),
        Q::SetBrokerConfigs { name, configs } => Written(controller.set_broker_configs(&name, configs).await),
        Q::AdoptTopics { broker, topics, migration, broker_configs } => Written(controller.adopt_topics(broker, topics, migration, broker_configs).await),
        Q::FetchImage { after, .. } => {
            let mut rx = controller.quorum.image();
            let _ = tokio::time::timeout(super::observer::FETCH_WAIT, rx.wait_for(|img| img.offset > after)).await;
            let image = rx.borrow().clone();
            let newer = (image.offset > after).then(|| (*image).clone());
            Image { status: controller.quorum.status(), image: newer }
        }
    }
}

/// Quorum messages inside controller-listener frames.
pub struct ControllerEnvelope;

impl Envelope for ControllerEnvelope {
    type Request = ControllerRequest;
    type Response = ControllerResponse;
    fn wrap(req: RaftRequest) -> ControllerRequest {
        ControllerRequest::Raft(req)
    }
    fn unwrap(resp: ControllerResponse) -> Option<RaftResponse> {
        match resp {
            ControllerResponse::Raft(r) => Some(*r),
            _ => None,
        }
    }
}

/// Serves the controller listener until `cancel`.
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>, controller: Arc<QuorumController>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((mut stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (raft, controller, cancel) = (raft.clone(), controller.clone(), cancel.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            loop {
                let req: ControllerRequest = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = read_frame(&mut stream) => match r {
                        Ok(Some(r)) => r,
                        Ok(None) => return,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "closing a controller connection");
                            return;
                        }
                    },
                };
                let resp = match req {
                    ControllerRequest::Raft(r) => ControllerResponse::Raft(Box::new(network::serve(&raft, r).await)),
                    ControllerRequest::DescribeVoters => {
                        let m = raft.metrics().borrow().membership_config.clone();
                        ControllerResponse::Voters(m.membership().nodes().map(|(id, n)| (*id as i32, n.addr.clone())).collect())
                    }
                    other => dispatch(&controller, other).await,
                };
                if write_frame(&mut stream, &resp).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A broker's way to the active controller: the local `QuorumController` when this node
/// leads the quorum, else one call over the leader's controller listener.
pub struct ControllerChannel {
    quorum: Arc<dyn MetadataQuorum>,
    local: Arc<QuorumController>,
    /// Voter id → controller listener address.
    voters: BTreeMap<i32, String>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl ControllerChannel {
    pub fn new(quorum: Arc<dyn MetadataQuorum>, local: Arc<QuorumController>, voters: BTreeMap<i32, String>) -> Self {
        ControllerChannel { quorum, local, voters }
    }

    async fn remote(&self, leader: i32, req: ControllerRequest) -> Result<ControllerResponse, ControllerError> {
        let addr = self.voters.get(&leader).ok_or(ControllerError::NotController { leader: Some(leader) })?;
        let call = async {
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            write_frame(&mut s, &req).await?;
            read_frame::<_, ControllerResponse>(&mut s)
                .await?
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the controller closed the connection"))
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(ControllerError::Failed(format!("controller {leader} at {addr}: {e}"))),
            Err(_) => Err(ControllerError::Timeout(format!("controller {leader} at {addr} did not answer in {CALL_TIMEOUT:?}"))),
        }
    }

    /// Sends `req` to the active controller: this node's own when it leads.
    async fn call(&self, req: ControllerRequest) -> Result<ControllerResponse, ControllerError> {
        let leader = self.quorum.status().leader_id.ok_or(ControllerError::NotController { leader: None })?;
        if leader == self.quorum.node_id() {
            // A leader cut off from the other voters cannot commit: answer in bounded time.
            return tokio::time::timeout(CALL_TIMEOUT, dispatch(&self.local, req)).await.map_err(|_| {
                ControllerError::Timeout(format!(
                    "the metadata quorum did not commit in {CALL_TIMEOUT:?}; is a majority of controller.quorum.voters reachable?"
                ))
            });
        }
        self.remote(leader, req).await
    }

    pub async fn register(&self, r: Registration) -> Result<i64, ControllerError> {
        match self.call(ControllerRequest::Register(r)).await? {
            ControllerResponse::Register(r) => r,
            _ => Err(other_kind()),
        }
    }

    pub async fn allocate_producer_ids(&self, broker_id: i32, floor: i64, size: i64) -> Result<(i64, i64), ControllerError> {
        match self.call(ControllerRequest::AllocateProducerIds { broker_id, floor, size }).await? {
            ControllerResponse::AllocateProducerIds(r) => r,
            _ => Err(other_kind()),
        }
    }

    pub async fn heartbeat(&self, broker_id: i32, broker_epoch: i64) -> Result<HeartbeatReply, ControllerError> {
        match self.call(ControllerRequest::Heartbeat { broker_id, broker_epoch }).await? {
            ControllerResponse::Heartbeat(r) => r,
            _ => Err(other_kind()),
        }
    }

    /// A metadata change (topics, configs): the offset of the batch that holds it.
    pub async fn write(&self, req: ControllerRequest) -> Result<u64, ControllerError> {
        match self.call(req).await? {
            ControllerResponse::Written(r) => r,
            _ => Err(other_kind()),
        }
    }
}

fn other_kind() -> ControllerError {
    ControllerError::Failed("the controller answered with a response of another kind".into())
}
