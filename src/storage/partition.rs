//! One partition as the API handlers see it: its log behind a lock, a watch on its end
//! offset that wakes long-polling fetches, and group-committed fsyncs.
//!
//! Fetches wait for the lock without blocking their runtime thread (`log_async`): an
//! append holds it across a `pwritev`, and a writer thread preempted there for a few
//! milliseconds must not also stall the thread a fetch runs on — with two runtime threads
//! that would stop the whole broker, every connection's responses included.

use super::log::{AppendError, AppendInfo, FileSlice, Log, PendingFlush, ReadError};
use super::batch::BatchHeader;
use super::producer_state::AbortedTxn;
use crate::time::now_ms;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use tokio::sync::{watch, Notify};

pub struct Partition {
    pub topic: String,
    pub index: i32,
    log: Mutex<Log>,
    /// Signalled each time the log lock is released, for `log_async`.
    unlocked: Notify,
    end_offset: watch::Sender<i64>,
    flush_lock: tokio::sync::Mutex<()>,
}

/// The offsets a fetch or ListOffsets reports for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    /// No transaction is open below it.
    pub last_stable: i64,
}

impl Partition {
    pub fn new(topic: &str, index: i32, log: Log) -> Self {
        let (end_offset, _) = watch::channel(log.next_offset());
        Partition {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            unlocked: Notify::new(),
            end_offset,
            flush_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The log, locked. Holders must not block (no fsync, no await) while holding it.
    pub fn log(&self) -> LogGuard<'_> {
        self.guard(self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The log, locked, waiting for the lock as a task rather than as a thread.
    pub async fn log_async(&self) -> LogGuard<'_> {
        loop {
            // Registered before trying, so a release between the try and the wait wakes us.
            let released = self.unlocked.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(g) = self.try_log() {
                return g;
            }
            released.await;
        }
    }

    fn try_log(&self) -> Option<LogGuard<'_>> {
        match self.log.try_lock() {
            Ok(g) => Some(self.guard(g)),
            Err(TryLockError::Poisoned(p)) => Some(self.guard(p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn guard<'a>(&'a self, g: MutexGuard<'a, Log>) -> LogGuard<'a> {
        LogGuard { guard: Some(g), unlocked: &self.unlocked }
    }

    /// Appends validated batches and wakes fetches waiting on this partition.
    /// Returns whether the flush policy now asks for an fsync.
    pub fn append(&self, batches: &[(&[u8], BatchHeader)]) -> Result<(AppendInfo, bool), AppendError> {
        let now = now_ms();
        let (info, flush_due, end) = {
            let mut log = self.log();
            let info = log.append(batches, now)?;
            let flush_due = if info.duplicate {
                // The first attempt may not have been fsynced yet (its answer was lost).
                let c = log.config();
                (c.flush_messages < i64::MAX || c.flush_ms < i64::MAX) && log.recovery_point() <= info.last_offset
            } else {
                log.flush_due(now)
            };
            (info, flush_due, log.next_offset())
        };
        if !info.duplicate {
            self.end_offset.send_replace(end);
        }
        Ok((info, flush_due))
    }

    /// Makes everything below `offset` durable. Concurrent callers share one fsync: whoever
    /// holds the flush lock syncs up to the log end, and later callers find it done.
    pub async fn flush_to(&self, offset: i64) -> io::Result<()> {
        let _guard = self.flush_lock.lock().await;
        let pending = {
            let mut log = self.log();
            if log.recovery_point() >= offset {
                return Ok(());
            }
            log.begin_flush()
        };
        self.run_flush(pending).await
    }

    /// Fsyncs the segments rolled since the last flush and moves the recovery point to
    /// the active segment's base, as Kafka does after a roll; off the produce path.
    pub async fn flush_rolled(&self) -> io::Result<()> {
        let _guard = self.flush_lock.lock().await;
        let Some(pending) = self.log().begin_flush_rolled() else { return Ok(()) };
        self.run_flush(pending).await
    }

    /// Runs an fsync on the blocking pool, then moves the recovery point (or, when the
    /// fsync failed, hands the files back to be flushed again).
    async fn run_flush(&self, pending: PendingFlush) -> io::Result<()> {
        let pending = Arc::new(pending);
        let result = {
            let p = pending.clone();
            tokio::task::spawn_blocking(move || p.run()).await.map_err(io::Error::other).and_then(|r| r)
        };
        let pending = Arc::try_unwrap(pending).unwrap_or_else(|_| unreachable!("the fsync task has ended"));
        match result {
            Ok(()) => {
                self.log().complete_flush(&pending, now_ms());
                Ok(())
            }
            Err(e) => {
                self.log().abort_flush(pending);
                Err(e)
            }
        }
    }

    /// DeleteRecords below `offset` (-1: the high watermark). Returns the new log start
    /// offset, or `None` when `offset` lies past the log end.
    pub fn delete_records(&self, offset: i64) -> io::Result<Option<i64>> {
        let start = {
            let mut log = self.log();
            let end = log.next_offset();
            let offset = if offset == -1 { end } else { offset };
            if offset < 0 || offset > end {
                return Ok(None);
            }
            log.delete_records_before(offset)?
        };
        self.notify();
        Ok(Some(start))
    }

    /// The background flusher's visit: a flush when `flush.ms` has passed since the last
    /// one, else an fsync of segments rolled since the last flush, if any.
    pub async fn flush_if_due(&self) -> io::Result<()> {
        let (due, rolled) = {
            let log = self.log();
            (log.flush_due(now_ms()).then(|| log.next_offset()), log.has_unflushed_rolled())
        };
        match due {
            Some(end) => self.flush_to(end).await,
            None if rolled => self.flush_rolled().await,
            None => Ok(()),
        }
    }

    pub fn read(&self, offset: i64, max_bytes: u64, min_one: bool) -> Result<(Option<FileSlice>, Offsets), ReadError> {
        Self::read_log(&self.log(), offset, max_bytes, min_one)
    }

    /// `read` for a fetch: waits for the lock as a task (see the module comment).
    pub async fn read_async(&self, offset: i64, max_bytes: u64, min_one: bool) -> Result<(Option<FileSlice>, Offsets), ReadError> {
        Self::read_log(&*self.log_async().await, offset, max_bytes, min_one)
    }

    fn read_log(log: &Log, offset: i64, max_bytes: u64, min_one: bool) -> Result<(Option<FileSlice>, Offsets), ReadError> {
        let slice = log.read(offset, max_bytes, min_one)?;
        Ok((slice, Self::offsets_of(log)))
    }

    /// A read_committed read: up to the last stable offset, with the aborted transactions
    /// whose records it may contain. Waits for the lock as a task.
    pub async fn read_committed(&self, offset: i64, max_bytes: u64, min_one: bool) -> Result<(Option<FileSlice>, Offsets, Vec<AbortedTxn>), ReadError> {
        let log = self.log_async().await;
        let lso = log.last_stable_offset();
        let slice = log.read_below(offset, max_bytes, min_one, lso)?;
        let aborted = if slice.is_some() { log.aborted_between(offset, lso) } else { Vec::new() };
        Ok((slice, Self::offsets_of(&log), aborted))
    }

    fn offsets_of(log: &Log) -> Offsets {
        Offsets { log_start: log.log_start_offset(), high_watermark: log.next_offset(), last_stable: log.last_stable_offset() }
    }

    pub fn offsets(&self) -> Offsets {
        Self::offsets_of(&self.log())
    }

    /// Writes a transaction marker and wakes fetches (the stable offset may have moved).
    /// Returns its offset and whether the flush policy now asks for an fsync.
    pub fn append_marker(&self, producer_id: i64, producer_epoch: i16, commit: bool, coordinator_epoch: i32) -> io::Result<(i64, bool)> {
        let now = now_ms();
        let (offset, flush_due) = {
            let mut log = self.log();
            let offset = log.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, now)?;
            (offset, log.flush_due(now))
        };
        self.notify();
        Ok((offset, flush_due))
    }

    /// A receiver that changes whenever the log end offset moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    /// Tells waiters the end moved for a reason other than an append (retention, deletion).
    pub fn notify(&self) {
        let end = self.log().next_offset();
        self.end_offset.send_replace(end);
    }
}

/// The partition's log, locked; releasing it wakes tasks waiting in `log_async`.
pub struct LogGuard<'a> {
    /// `Some` until dropped.
    guard: Option<MutexGuard<'a, Log>>,
    unlocked: &'a Notify,
}

impl Deref for LogGuard<'_> {
    type Target = Log;
    fn deref(&self) -> &Log {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for LogGuard<'_> {
    fn deref_mut(&mut self) -> &mut Log {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for LogGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.unlocked.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::Partition;
    use crate::config::LogConfig;
    use crate::storage::log::{LoadOptions, Log};

    /// On a one-thread runtime a task that blocked its thread on the lock would never let
    /// the holder release it: this test would hang instead of passing.
    #[tokio::test(flavor = "current_thread")]
    async fn a_fetch_waits_for_the_log_lock_as_a_task() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), LoadOptions::fresh(crate::time::now_ms())).unwrap();
        let part = std::sync::Arc::new(Partition::new("t", 0, log));
        let held = part.log();
        let waiter = {
            let part = part.clone();
            tokio::spawn(async move { part.read_async(0, 1024, true).await.map(|(slice, offsets)| (slice.is_none(), offsets.high_watermark)) })
        };
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "the read waits while the lock is held");
        drop(held);
        assert_eq!(waiter.await.unwrap().unwrap(), (true, 0), "released, the read of an empty log completes");
    }
}
