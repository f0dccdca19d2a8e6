//! Kafka's `LogCleaner`: `log.cleaner.threads` background threads that compact the logs
//! of topics with `cleanup.policy=compact` (or `compact,delete`).
//!
//! Each round a thread picks the dirtiest log no other thread is cleaning — dirty ratio
//! (bytes after the first dirty offset over all cleanable bytes) at least
//! `min.cleanable.dirty.ratio`, or dirty records older than `max.compaction.lag.ms` —
//! runs one `Cleaner` pass over it, and records the new first dirty offset in
//! `cleaner-offset-checkpoint` (Kafka's file and format). With nothing to clean, a
//! thread waits `log.cleaner.backoff.ms` or until it is woken.

use super::checkpoint;
use super::cleaner::{self, CleanStats, Throttle};
use super::{LogManager, Partition};
use crate::config::CleanerConfig;
use crate::time::now_ms;
use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const CHECKPOINT: &str = "cleaner-offset-checkpoint";

type TopicPartition = (String, i32);

/// Totals since start (for benchmarks and tests).
#[derive(Debug, Default)]
pub struct CleanerMetrics {
    pub passes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
}

struct Shared {
    logs: Arc<LogManager>,
    cfg: CleanerConfig,
    throttle: Throttle,
    checkpoint_path: PathBuf,
    first_dirty: Mutex<checkpoint::Offsets>,
    /// Logs holding tombstones, and when the oldest of them may go.
    tombstones_due: Mutex<checkpoint::Offsets>,
    busy: Mutex<HashSet<TopicPartition>>,
    stop: Mutex<bool>,
    wake: Condvar,
    metrics: CleanerMetrics,
}

pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl LogCleaner {
    /// The cleaner over `logs`; its threads start with `start` (when `log.cleaner.enable`).
    pub fn new(logs: Arc<LogManager>, cfg: CleanerConfig) -> io::Result<Self> {
        let checkpoint_path = logs.broker_config().log_dir.join(CHECKPOINT);
        let first_dirty = checkpoint::read(&checkpoint_path)?;
        let shared = Arc::new(Shared {
            logs,
            throttle: Throttle::new(cfg.io_max_bytes_per_second),
            cfg,
            checkpoint_path,
            first_dirty: Mutex::new(first_dirty),
            tombstones_due: Mutex::new(checkpoint::Offsets::new()),
            busy: Mutex::new(HashSet::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            metrics: CleanerMetrics::default(),
        });
        Ok(LogCleaner { shared, threads: Mutex::new(Vec::new()) })
    }

    pub fn start(&self) {
        if !self.shared.cfg.enable {
            return;
        }
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..self.shared.cfg.threads {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new().name(format!("log-cleaner-{i}")).spawn(move || shared.run());
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => tracing::error!(error = %e, "cannot start a log cleaner thread; compacted topics will grow"),
            }
        }
    }

    /// One cleaning round on the calling thread: the dirtiest log, if any needs it.
    pub fn clean_once(&self) -> io::Result<Option<CleanStats>> {
        self.shared.clean_dirtiest()
    }

    /// Wakes the threads to look for work now (for example after a topic config change).
    pub fn wake(&self) {
        self.shared.wake.notify_all();
    }

    pub fn metrics(&self) -> &CleanerMetrics {
        &self.shared.metrics
    }

    /// Stops the threads after their current pass.
    pub fn shutdown(&self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for LogCleaner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How much a compacted log needs cleaning: the dirty share of its cleanable bytes and
/// whether it is due — dirty enough, dirty records waiting past `max.compaction.lag.ms`,
/// or tombstones past `delete.retention.ms` (`tombstones_due`).
fn dirtiness(part: &Partition, first_dirty: i64, tombstones_due: Option<i64>, now: i64) -> Option<(f64, bool)> {
    let log = part.log();
    let config = log.config();
    if !config.cleanup_policy.compact {
        return None;
    }
    let end = log.first_uncleanable_offset(now);
    let segs = log.segments_below(end);
    let total: u64 = segs.iter().map(|s| s.size).sum();
    let dirty: Vec<_> = segs.iter().filter(|s| s.next_offset > first_dirty).collect();
    let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
    if total == 0 {
        return None;
    }
    let ratio = dirty_bytes as f64 / total as f64;
    let overdue = dirty.first().is_some_and(|s| s.largest_timestamp >= 0 && now.saturating_sub(s.largest_timestamp) > config.max_compaction_lag_ms);
    let tombstones = tombstones_due.is_some_and(|due| due <= now);
    Some((ratio, (dirty_bytes > 0 && (overdue || ratio >= config.min_cleanable_dirty_ratio)) || tombstones))
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        while !self.stopped() {
            let worked = match self.clean_dirtiest() {
                Ok(done) => done.is_some(),
                Err(e) => {
                    tracing::error!(error = %e, "log cleaning failed; the log is unchanged and will be retried (check the disk)");
                    false
                }
            };
            if !worked {
                let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
                if !*stop {
                    let _ = self.wake.wait_timeout(stop, Duration::from_millis(self.cfg.backoff_ms));
                }
            }
        }
    }

    /// Picks the dirtiest cleanable log (marking it busy) and cleans it.
    fn clean_dirtiest(&self) -> io::Result<Option<CleanStats>> {
        let now = now_ms();
        let picked = {
            let first_dirty = self.first_dirty.lock().unwrap_or_else(|e| e.into_inner());
            let due = self.tombstones_due.lock().unwrap_or_else(|e| e.into_inner());
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            let mut best: Option<(f64, Arc<Partition>, i64)> = None;
            for topic in self.logs.topics() {
                for part in &topic.partitions {
                    let key = (topic.name.clone(), part.index);
                    if busy.contains(&key) {
                        continue;
                    }
                    // A checkpoint past the log end belongs to a deleted topic of that name.
                    let from = first_dirty.get(&key).copied().filter(|o| *o <= part.offsets().high_watermark).unwrap_or(0);
                    if let Some((ratio, true)) = dirtiness(part, from, due.get(&key).copied(), now) {
                        if best.as_ref().is_none_or(|b| ratio > b.0) {
                            best = Some((ratio, part.clone(), from));
                        }
                    }
                }
            }
            let Some((_, part, from)) = best else { return Ok(None) };
            busy.insert((part.topic.clone(), part.index));
            (part, from)
        };
        let (part, from) = picked;
        let key = (part.topic.clone(), part.index);
        let limit = self.cfg.dedupe_buffer_size / self.cfg.threads.max(1);
        let force = self.tombstones_due.lock().unwrap_or_else(|e| e.into_inner()).get(&key).is_some_and(|d| *d <= now);
        let result = cleaner::clean(&part, from, force, limit, &self.throttle, now);
        self.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        let Some((next_dirty, stats)) = result? else {
            self.tombstones_due.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            return Ok(None);
        };
        self.metrics.passes.fetch_add(1, Ordering::Relaxed);
        self.metrics.bytes_read.fetch_add(stats.bytes_read, Ordering::Relaxed);
        self.metrics.bytes_written.fetch_add(stats.bytes_written, Ordering::Relaxed);
        tracing::debug!(topic = %key.0, partition = key.1, next_dirty, ?stats, "cleaned");
        {
            let mut due = self.tombstones_due.lock().unwrap_or_else(|e| e.into_inner());
            match stats.tombstones_due {
                Some(d) => due.insert(key.clone(), d),
                None => due.remove(&key),
            };
        }
        self.checkpoint(key, next_dirty)?;
        Ok(Some(stats))
    }

    fn checkpoint(&self, key: TopicPartition, next_dirty: i64) -> io::Result<()> {
        let mut map = self.first_dirty.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, next_dirty);
        map.retain(|(t, p), _| self.logs.partition(t, *p).is_some());
        checkpoint::write(&self.checkpoint_path, &map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CleanupPolicy, LogConfig};
    use crate::storage::batch::test_support::batch;
    use crate::storage::batch::validate_produced;
    use crate::storage::log::{LoadOptions, Log};

    fn partition(dir: &std::path::Path, config: LogConfig) -> Partition {
        let part = Partition::new("t", 0, Log::open(dir, config, LoadOptions::fresh(now_ms())).unwrap());
        for ts in [1_000, 2_000] {
            let b = batch(&[b"x"], ts);
            part.append(&[(&b[..], validate_produced(&b, usize::MAX).unwrap())]).unwrap();
            part.log().roll(0).unwrap();
        }
        part
    }

    #[test]
    fn due_by_dirty_ratio_by_max_lag_or_by_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let compact = CleanupPolicy { delete: false, compact: true };
        let lazy = LogConfig { cleanup_policy: compact, min_cleanable_dirty_ratio: 0.9, ..LogConfig::default() };
        let part = partition(dir.path(), lazy.clone());
        // Half the cleanable bytes are dirty: below a 0.9 ratio.
        let (ratio, due) = dirtiness(&part, 1, None, 3_000).unwrap();
        assert!((ratio - 0.5).abs() < 0.01 && !due);
        assert!(dirtiness(&part, 0, None, 3_000).unwrap().1, "all dirty");
        assert!(dirtiness(&part, 1, Some(2_999), 3_000).unwrap().1, "tombstones due");
        assert!(!dirtiness(&part, 1, Some(3_001), 3_000).unwrap().1, "tombstones not yet due");
        drop(part);
        let dir = tempfile::tempdir().unwrap();
        let overdue = LogConfig { max_compaction_lag_ms: 500, ..lazy };
        let part = partition(dir.path(), overdue);
        assert!(!dirtiness(&part, 1, None, 2_400).unwrap().1, "dirty records 400 ms old");
        assert!(dirtiness(&part, 1, None, 2_600).unwrap().1, "dirty records past max.compaction.lag.ms");
        let dir = tempfile::tempdir().unwrap();
        assert!(dirtiness(&partition(dir.path(), LogConfig::default()), 0, None, 3_000).is_none(), "not compacted");
    }
}
