//! openraft's network over the controller listener: one connection per peer, one
//! request in flight on it, reconnected after any failure (a failed call is reported
//! Unreachable and openraft retries). The server half answers the same messages.

use super::TypeConfig;
use crate::cluster::rpc::{read_frame, write_frame};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, Raft};
use serde::{Deserialize, Serialize};
use std::io;
use std::time::Duration;
use tokio::net::TcpStream;

type NodeId = u64;

#[derive(Serialize, Deserialize)]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Serialize, Deserialize)]
pub enum RaftResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// Answers one quorum message with the local raft.
pub async fn serve(raft: &Raft<TypeConfig>, req: RaftRequest) -> RaftResponse {
    match req {
        RaftRequest::AppendEntries(r) => RaftResponse::AppendEntries(raft.append_entries(r).await),
        RaftRequest::Vote(r) => RaftResponse::Vote(raft.vote(r).await),
        RaftRequest::InstallSnapshot(r) => RaftResponse::InstallSnapshot(raft.install_snapshot(r).await),
    }
}

/// Wraps a quorum message for the controller listener, which also carries other calls.
pub trait Envelope: Send + Sync + 'static {
    type Request: Serialize + Send + Sync;
    type Response: for<'de> Deserialize<'de> + Send;
    fn wrap(req: RaftRequest) -> Self::Request;
    fn unwrap(resp: Self::Response) -> Option<RaftResponse>;
}

pub struct Network<E> {
    envelope: std::marker::PhantomData<E>,
}

impl<E> Default for Network<E> {
    fn default() -> Self {
        Network { envelope: std::marker::PhantomData }
    }
}

pub struct Peer<E> {
    target: NodeId,
    addr: String,
    conn: Option<TcpStream>,
    envelope: std::marker::PhantomData<E>,
}

impl<E: Envelope> RaftNetworkFactory<TypeConfig> for Network<E> {
    type Network = Peer<E>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        Peer { target, addr: node.addr.clone(), conn: None, envelope: std::marker::PhantomData }
    }
}

impl<E: Envelope> Peer<E> {
    async fn call(&mut self, req: RaftRequest, ttl: Duration) -> io::Result<RaftResponse> {
        let result = tokio::time::timeout(ttl, async {
            if self.conn.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                s.set_nodelay(true)?;
                self.conn = Some(s);
            }
            let conn = self.conn.as_mut().unwrap();
            write_frame(conn, &E::wrap(req)).await?;
            let resp: Option<E::Response> = read_frame(conn).await?;
            let resp = resp.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the controller closed the connection"))?;
            E::unwrap(resp).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an answer of another kind"))
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from node {} in {ttl:?}", self.target))));
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

fn unreachable<E: std::error::Error>(e: io::Error) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&e))
}

impl<E: Envelope> RaftNetwork<TypeConfig> for Peer<E> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(RaftRequest::AppendEntries(rpc), option.hard_ttl()).await.map_err(unreachable)? {
            RaftResponse::AppendEntries(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(RPCError::Network(NetworkError::new(&io::Error::new(io::ErrorKind::InvalidData, "mismatched answer")))),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>> {
        match self.call(RaftRequest::InstallSnapshot(rpc), option.hard_ttl()).await.map_err(unreachable)? {
            RaftResponse::InstallSnapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(RPCError::Network(NetworkError::new(&io::Error::new(io::ErrorKind::InvalidData, "mismatched answer")))),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(RaftRequest::Vote(rpc), option.hard_ttl()).await.map_err(unreachable)? {
            RaftResponse::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(RPCError::Network(NetworkError::new(&io::Error::new(io::ErrorKind::InvalidData, "mismatched answer")))),
        }
    }
}

/// Quorum messages sent as they are, for a listener that carries nothing else (tests, and
/// a controller-only node until the controller's own calls are added).
pub struct Direct;

impl Envelope for Direct {
    type Request = RaftRequest;
    type Response = RaftResponse;
    fn wrap(req: RaftRequest) -> RaftRequest {
        req
    }
    fn unwrap(resp: RaftResponse) -> Option<RaftResponse> {
        Some(resp)
    }
}

/// Serves quorum messages (`Direct` framing) on `listener` until the task is dropped.
pub async fn serve_direct(listener: tokio::net::TcpListener, raft: Raft<super::TypeConfig>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let raft = raft.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            loop {
                let req: RaftRequest = match read_frame(&mut stream).await {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "closing a controller connection");
                        return;
                    }
                };
                let resp = serve(&raft, req).await;
                if write_frame(&mut stream, &resp).await.is_err() {
                    return;
                }
            }
        });
    }
}
