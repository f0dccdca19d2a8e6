//! Counters the tests and operators can read: proof that the zero-copy path is taken.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Metrics {
    /// Record bytes sent to sockets by `sendfile` (never copied through the process).
    pub sendfile_bytes: AtomicU64,
    /// Record bytes that had to be copied (only where sendfile cannot be used).
    pub copied_record_bytes: AtomicU64,
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    /// Retried batches of idempotent producers answered with their original offsets.
    pub duplicate_batches: AtomicU64,
}

impl Metrics {
    pub fn sendfile_bytes(&self) -> u64 {
        self.sendfile_bytes.load(Ordering::Relaxed)
    }
    pub fn copied_record_bytes(&self) -> u64 {
        self.copied_record_bytes.load(Ordering::Relaxed)
    }
    pub fn duplicate_batches(&self) -> u64 {
        self.duplicate_batches.load(Ordering::Relaxed)
    }
}
