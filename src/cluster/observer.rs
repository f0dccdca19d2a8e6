//! A broker-only node's view of the metadata quorum (KRaft's observer): it takes no part
//! in elections and holds no copy of the log; it asks the voters for the metadata image,
//! long-polling for each newer one, and learns from them who leads the quorum. Handlers,
//! the publisher and the broker's lifecycle use it through `MetadataQuorum` exactly as on
//! a voter; only appends are refused (they go to the active controller).
//!
//! Each answer carries the whole image, not the records since the last one: images are
//! small next to the cost of a second code path for deltas, and an observer that was away
//! for a while needs the whole image anyway.

use super::controller_rpc::{ControllerRequest, ControllerResponse};
use super::image::MetadataImage;
use super::quorum::{MetadataQuorum, QuorumError, QuorumStatus};
use super::records::MetadataRecord;
use super::rpc::{read_frame, write_frame};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a voter holds a fetch that has nothing newer.
pub const FETCH_WAIT: Duration = Duration::from_millis(500);

pub struct ObserverQuorum {
    node_id: i32,
    image: watch::Sender<Arc<MetadataImage>>,
    status: Mutex<QuorumStatus>,
    cancel: CancellationToken,
}

impl ObserverQuorum {
    /// Starts following the voters (id → controller listener address).
    pub fn start(node_id: i32, voters: BTreeMap<i32, String>) -> Arc<Self> {
        let status = QuorumStatus { leader_id: None, leader_epoch: 0, high_watermark: 0, voters: Vec::new(), observers: Vec::new(), caught_up: false };
        let q = Arc::new(ObserverQuorum {
            node_id,
            image: watch::channel(Arc::new(MetadataImage::default())).0,
            status: Mutex::new(status),
            cancel: CancellationToken::new(),
        });
        tokio::spawn(q.clone().follow(voters));
        q
    }

    async fn fetch(addr: &str, node_id: i32, after: u64) -> std::io::Result<ControllerResponse> {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        write_frame(&mut s, &ControllerRequest::FetchImage { node_id, after }).await?;
        read_frame::<_, ControllerResponse>(&mut s)
            .await?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the voter closed the connection"))
    }

    async fn follow(self: Arc<Self>, voters: BTreeMap<i32, String>) {
        let ids: Vec<i32> = voters.keys().copied().collect();
        let mut next = 0usize;
        let mut failures = 0u32;
        loop {
            // The leader when known (its image is the newest), else the voters in turn.
            let leader = self.status.lock().unwrap().leader_id.filter(|l| voters.contains_key(l));
            let id = leader.unwrap_or_else(|| {
                next = (next + 1) % ids.len();
                ids[next]
            });
            let after = self.image.borrow().offset;
            let call = tokio::time::timeout(FETCH_WAIT * 4, Self::fetch(&voters[&id], self.node_id, after));
            let answer = tokio::select! {
                _ = self.cancel.cancelled() => return,
                a = call => a,
            };
            match answer {
                Ok(Ok(ControllerResponse::Image { status, image })) => {
                    failures = 0;
                    let caught_up = image.as_ref().map_or(after, |i| i.offset) as i64 >= status.high_watermark.saturating_sub(1);
                    *self.status.lock().unwrap() = QuorumStatus { caught_up, ..status };
                    if let Some(img) = image {
                        if img.offset > self.image.borrow().offset {
                            self.image.send_replace(Arc::new(img));
                        }
                    }
                }
                other => {
                    failures += 1;
                    let why = match other {
                        Ok(Ok(_)) => "an answer of another kind".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => format!("no answer in {:?}", FETCH_WAIT * 4),
                    };
                    tracing::debug!(voter = id, error = %why, "metadata fetch failed");
                    if failures % 50 == 20 {
                        tracing::warn!(voter = id, error = %why, "cannot fetch the metadata image from the controllers; retrying");
                    }
                    self.status.lock().unwrap().leader_id = None;
                    tokio::select! {
                        _ = self.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
}

impl MetadataQuorum for ObserverQuorum {
    fn append(&self, _records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        let leader = self.status.lock().unwrap().leader_id;
        Box::pin(async move { Err(QuorumError::NotLeader { leader }) })
    }

    fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    fn status(&self) -> QuorumStatus {
        self.status.lock().unwrap().clone()
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn add_observer(&self, _node_id: i32, _address: String) -> BoxFuture<'_, Result<(), QuorumError>> {
        let leader = self.status.lock().unwrap().leader_id;
        Box::pin(async move { Err(QuorumError::NotLeader { leader }) })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.cancel.cancel();
        Box::pin(async {})
    }
}
