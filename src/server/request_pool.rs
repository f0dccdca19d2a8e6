//! Kafka's `queued.max.request.bytes`: one pool of memory for the bytes of the requests the
//! broker is reading and handling, shared by every connection. A connection takes room for
//! a request's full size from the pool when it has read the size prefix, before reading the
//! body, and gives it back when the request has been handled; when there is no room it
//! waits, and the request's bytes stay in the kernel's socket buffers, which TCP keeps
//! bounded. Twenty clients each sending a 100 MB request thus cost the pool, not 2 GB.
//!
//! Requests under 64 KiB (every request of a typical client but large produces) are not
//! counted, so a pool held by a few huge requests does not stop the others: the memory
//! bound is the pool plus 64 KiB per connection.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests below this size bypass the pool.
pub const UNCOUNTED_BELOW: usize = 64 * 1024;

pub struct RequestPool {
    room: Option<(Arc<Semaphore>, usize)>,
}

/// Room taken for one request; given back when dropped.
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl RequestPool {
    /// A pool of `capacity` bytes; `None`: unbounded.
    pub fn new(capacity: Option<usize>) -> Self {
        let capacity = capacity.map(|c| c.min(u32::MAX as usize).min(Semaphore::MAX_PERMITS));
        RequestPool { room: capacity.map(|c| (Arc::new(Semaphore::new(c)), c)) }
    }

    /// Waits for room for a request of `size` bytes. A request larger than the whole pool
    /// waits for all of it.
    pub async fn reserve(&self, size: usize) -> Reservation {
        match &self.room {
            Some((sem, capacity)) if size >= UNCOUNTED_BELOW => {
                let n = size.min(*capacity) as u32;
                Reservation { _permit: Some(sem.clone().acquire_many_owned(n).await.expect("the pool is never closed")) }
            }
            _ => Reservation { _permit: None },
        }
    }

    /// Bytes free in the pool (the capacity when nothing is reserved); `None` if unbounded.
    pub fn available(&self) -> Option<usize> {
        self.room.as_ref().map(|(sem, _)| sem.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_for_room_and_small_ones_pass() {
        let pool = RequestPool::new(Some(200_000));
        let a = pool.reserve(150_000).await;
        let small = pool.reserve(1_000).await;
        assert_eq!(pool.available(), Some(50_000), "small requests are not counted");
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), pool.reserve(100_000)).await;
        assert!(waiting.is_err(), "no room: the request waits");
        drop(a);
        let huge = pool.reserve(10_000_000).await;
        assert_eq!(pool.available(), Some(0), "a request larger than the pool takes all of it");
        drop((huge, small));
        assert!(RequestPool::new(None).available().is_none());
    }
}
