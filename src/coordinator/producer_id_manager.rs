//! Hands out producer ids for InitProducerId, from blocks the active controller allocates
//! in the metadata log (`ProducerIdsRecord`, Kafka's AllocateProducerIds): no two brokers,
//! and no two starts of one broker, ever hand out the same id. The next block is fetched
//! in the background when a tenth of the current one is left, as Kafka's
//! `RPCProducerIdManager` does; a request that finds no id ready is told to retry.
//!
//! Data directories from before the metadata log kept the end of their last block in
//! `producer-id-block`; the first block allocated is above it.

use futures::future::BoxFuture;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Ids per block, as Kafka's.
pub const BLOCK: i64 = 1000;
const LEGACY_FILE: &str = "producer-id-block";

/// Allocates the next block: `floor` is the lowest first id allowed; returns [start, end).
pub type Allocate = Arc<dyn Fn(i64) -> BoxFuture<'static, io::Result<(i64, i64)>> + Send + Sync>;

#[derive(Default)]
struct State {
    next: i64,
    end: i64,
    prefetched: Option<(i64, i64)>,
    fetching: bool,
}

impl State {
    /// Keeps an arrived block unless one is already waiting or it lies below the ids in
    /// use (two fetches crossed): its ids are then skipped, never handed out.
    fn keep(&mut self, block: (i64, i64)) {
        if self.prefetched.is_none() && block.0 >= self.end {
            self.prefetched = Some(block);
        }
    }
}

pub struct ProducerIdManager {
    allocate: Allocate,
    legacy_floor: i64,
    state: Mutex<State>,
    /// Signalled when a fetched block arrives.
    arrived: tokio::sync::Notify,
}

/// The end of the last block a pre-metadata-log data directory reserved (0 if none).
pub fn legacy_floor(log_dir: &Path) -> io::Result<i64> {
    let path: PathBuf = log_dir.join(LEGACY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a number; restore it", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

impl ProducerIdManager {
    pub fn new(allocate: Allocate, legacy_floor: i64) -> Arc<Self> {
        Arc::new(ProducerIdManager { allocate, legacy_floor, state: Mutex::new(State::default()), arrived: tokio::sync::Notify::new() })
    }

    /// Fetches the first block and waits for it (at start, so the first InitProducerId
    /// finds ids ready).
    pub async fn prefetch(self: &Arc<Self>) -> io::Result<()> {
        let block = (self.allocate)(self.legacy_floor).await?;
        self.state.lock().unwrap().keep(block);
        self.arrived.notify_waiters();
        Ok(())
    }

    fn fetch_in_background(self: &Arc<Self>, s: &mut State) {
        if s.fetching || s.prefetched.is_some() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        s.fetching = true;
        let this = self.clone();
        rt.spawn(async move {
            let r = (this.allocate)(this.legacy_floor).await;
            let mut s = this.state.lock().unwrap();
            s.fetching = false;
            match r {
                Ok(block) => s.keep(block),
                Err(e) => tracing::warn!(error = %e, "could not get producer ids from the controller; retrying at the next request"),
            }
            drop(s);
            this.arrived.notify_waiters();
        });
    }

    /// The next id, waiting up to `timeout` for a block on its way (at start, or when ids
    /// go faster than blocks arrive).
    pub async fn next_id_wait(self: &Arc<Self>, timeout: std::time::Duration) -> io::Result<i64> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            match self.next_id() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tokio::time::Instant::now() < deadline => {
                    let _ = tokio::time::timeout_at(deadline, arrived).await;
                }
                other => return other,
            }
        }
    }

    /// The next id; `WouldBlock` when none is ready yet (the client retries:
    /// COORDINATOR_LOAD_IN_PROGRESS).
    pub fn next_id(self: &Arc<Self>) -> io::Result<i64> {
        let mut s = self.state.lock().unwrap();
        if s.next >= s.end {
            match s.prefetched.take() {
                Some((start, end)) => {
                    assert!(start >= s.end && end > start, "producer id blocks only move forward: [{start}, {end}) after {}", s.end);
                    s.next = start;
                    s.end = end;
                }
                None => {
                    self.fetch_in_background(&mut s);
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "a producer id block is being fetched from the controller"));
                }
            }
        }
        let id = s.next;
        s.next += 1;
        if s.end - s.next < BLOCK / 10 {
            self.fetch_in_background(&mut s);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A controller stand-in: blocks from a counter that only grows.
    fn counter() -> (Allocate, Arc<AtomicI64>) {
        let next = Arc::new(AtomicI64::new(0));
        let n = next.clone();
        let f: Allocate = Arc::new(move |floor| {
            let n = n.clone();
            Box::pin(async move {
                let start = n.load(Ordering::SeqCst).max(floor);
                n.store(start + BLOCK, Ordering::SeqCst);
                Ok((start, start + BLOCK))
            })
        });
        (f, next)
    }

    #[tokio::test]
    async fn ids_come_from_growing_blocks_and_the_next_is_fetched_early() {
        let (alloc, next) = counter();
        let m = ProducerIdManager::new(alloc, 0);
        m.prefetch().await.unwrap();
        let first: Vec<i64> = (0..3).map(|_| m.next_id().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        for _ in 3..BLOCK {
            m.next_id().unwrap();
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(next.load(Ordering::SeqCst), 2 * BLOCK, "the second block was fetched before the first ran out");
        assert_eq!(m.next_id().unwrap(), BLOCK);
        // A second manager (another broker, or this one restarted) never repeats an id.
        let (alloc2, _) = (m.allocate.clone(), ());
        let other = ProducerIdManager::new(alloc2, 0);
        other.prefetch().await.unwrap();
        assert!(other.next_id().unwrap() >= 2 * BLOCK);
    }

    #[tokio::test]
    async fn a_request_at_start_waits_for_the_first_block_and_crossed_fetches_never_go_back() {
        let (alloc, _) = counter();
        let m = ProducerIdManager::new(alloc, 0);
        assert_eq!(m.next_id_wait(std::time::Duration::from_secs(5)).await.unwrap(), 0, "waited for the block instead of failing");
        // A late block from below the ids in use is dropped, not handed out again.
        m.state.lock().unwrap().keep((0, BLOCK));
        assert!(m.state.lock().unwrap().prefetched.is_none());
        for _ in 1..(2 * BLOCK) {
            m.next_id_wait(std::time::Duration::from_secs(5)).await.unwrap();
        }
        assert_eq!(m.next_id_wait(std::time::Duration::from_secs(5)).await.unwrap(), 2 * BLOCK);
    }

    #[tokio::test]
    async fn without_a_ready_block_the_request_is_told_to_retry_and_a_legacy_floor_is_respected() {
        let (alloc, _) = counter();
        let m = ProducerIdManager::new(alloc, 5_000);
        let e = m.next_id().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(m.next_id().unwrap(), 5_000, "above what the old producer-id-block file reserved");
    }
}
