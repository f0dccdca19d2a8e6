//! Kafka's `LeaderEpochFileCache`: for each leader epoch that wrote to a partition, the
//! offset of its first batch, kept in the partition directory's `leader-epoch-checkpoint`
//! (Kafka's format: a version line `0`, a count line, then `epoch start-offset` lines).
//!
//! OffsetForLeaderEpoch answers from it (KIP-101, KIP-279): where a given epoch ended, so a
//! follower that follows a new leader truncates to the right point instead of to its
//! possibly stale high watermark, and a consumer (KIP-320) can tell that the log it read
//! was truncated under it. Entries stay monotonic in both epoch and offset; truncating
//! the log at either end trims them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub const FILE: &str = "leader-epoch-checkpoint";
/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: PathBuf,
    /// epoch → start offset; both strictly increase together.
    epochs: BTreeMap<i32, i64>,
}

fn parse(text: &str) -> Option<BTreeMap<i32, i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut epochs = BTreeMap::new();
    let mut last: Option<(i32, i64)> = None;
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else { return None };
        let (epoch, offset): (i32, i64) = (e.parse().ok()?, o.parse().ok()?);
        if epoch < 0 || offset < 0 || last.is_some_and(|(le, lo)| epoch <= le || offset < lo) {
            return None;
        }
        epochs.insert(epoch, offset);
        last = Some((epoch, offset));
    }
    (epochs.len() == count).then_some(epochs)
}

impl LeaderEpochFileCache {
    /// Reads the partition's checkpoint. `Ok(None)` when there is none or it cannot be
    /// trusted (the caller rebuilds it from the batches' epochs).
    pub fn load(dir: &Path) -> io::Result<Option<Self>> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match parse(&text) {
            Some(epochs) => Ok(Some(LeaderEpochFileCache { path, epochs })),
            None => {
                tracing::warn!(file = %path.display(), "malformed leader-epoch-checkpoint; rebuilding it from the log");
                Ok(None)
            }
        }
    }

    pub fn empty(dir: &Path) -> Self {
        LeaderEpochFileCache { path: dir.join(FILE), epochs: BTreeMap::new() }
    }

    fn flush(&self) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.epochs.len());
        for (e, o) in &self.epochs {
            text.push_str(&format!("{e} {o}\n"));
        }
        super::checkpoint::write_atomically(&self.path, text.as_bytes())
    }

    pub fn entries(&self) -> Vec<(i32, i64)> {
        self.epochs.iter().map(|(e, o)| (*e, *o)).collect()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.keys().next_back().copied()
    }

    /// Records that `epoch` wrote from `start_offset` on, without persisting it. Returns
    /// whether anything changed. Entries that would break monotonicity (an epoch not below
    /// it, or a start not below it) are dropped first, as Kafka does.
    fn assign_in_memory(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false; // a batch written before epochs were stamped
        }
        if let Some((&le, &lo)) = self.epochs.iter().next_back() {
            if le == epoch && start_offset >= lo {
                return false;
            }
        }
        self.epochs.retain(|e, o| *e < epoch && *o < start_offset);
        self.epochs.insert(epoch, start_offset);
        true
    }

    /// `assign_in_memory`, persisted when it changed something (a new epoch is rare).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if self.assign_in_memory(epoch, start_offset) {
            self.flush()?;
        }
        Ok(())
    }

    /// Assigns without persisting; `persist` writes once after a batch of these (a rebuild).
    pub fn assign_quietly(&mut self, epoch: i32, start_offset: i64) {
        self.assign_in_memory(epoch, start_offset);
    }

    pub fn persist(&self) -> io::Result<()> {
        self.flush()
    }

    /// Kafka's `endOffsetFor`: the epoch at or below `requested` and the offset where it
    /// ended (the log end for the latest epoch); undefined for an unknown or too new epoch.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some((_, &higher_start)) = self.epochs.range(requested + 1..).next() else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.epochs.range(..=requested).next_back() {
            Some((&floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// The log was truncated to end before `end_offset`: epochs that started there or later go.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<()> {
        let before = self.epochs.len();
        self.epochs.retain(|_, o| *o < end_offset);
        if self.epochs.len() != before {
            self.flush()?;
        }
        Ok(())
    }

    /// The log now starts at `start_offset`: epochs that ended before it go, and the one it
    /// falls in starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> io::Result<()> {
        let Some((&keep, &from)) = self.epochs.range(..).rev().find(|(_, o)| **o <= start_offset) else {
            return Ok(());
        };
        if from == start_offset && self.epochs.keys().next() == Some(&keep) {
            return Ok(());
        }
        self.epochs.retain(|e, _| *e >= keep);
        self.epochs.insert(keep, start_offset);
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochFileCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochFileCache::empty(dir.path());
        for (e, o) in entries {
            c.assign(*e, *o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn assignments_stay_monotonic_and_persist_in_kafkas_format() {
        let (dir, mut c) = cache(&[(0, 0), (0, 5), (1, 10), (3, 20)]);
        assert_eq!(c.entries(), vec![(0, 0), (1, 10), (3, 20)], "a later batch of the same epoch adds nothing");
        assert_eq!(std::fs::read_to_string(dir.path().join(FILE)).unwrap(), "0\n3\n0 0\n1 10\n3 20\n");
        // A lower epoch, or an earlier start, replaces what would break the order.
        c.assign(2, 15).unwrap();
        assert_eq!(c.entries(), vec![(0, 0), (1, 10), (2, 15)]);
        c.assign(4, 12).unwrap();
        assert_eq!(c.entries(), vec![(0, 0), (1, 10), (4, 12)]);
        c.assign(-1, 30).unwrap();
        assert_eq!(c.entries(), vec![(0, 0), (1, 10), (4, 12)], "unstamped batches are not epochs");
        let again = LeaderEpochFileCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(again.entries(), c.entries());
    }

    #[test]
    fn end_offsets_for_epochs_as_kafka_answers_them() {
        let (_dir, c) = cache(&[(1, 0), (2, 10), (5, 30)]);
        let leo = 42;
        assert_eq!(c.end_offset_for(5, leo), (5, 42), "the latest epoch ends at the log end");
        assert_eq!(c.end_offset_for(2, leo), (2, 30));
        assert_eq!(c.end_offset_for(3, leo), (2, 30), "an epoch that never wrote: the one before, ended where the next began");
        assert_eq!(c.end_offset_for(0, leo), (0, 0), "older than any: the first epoch's start");
        assert_eq!(c.end_offset_for(6, leo), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET), "newer than any");
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, leo), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        let (_dir, empty) = cache(&[]);
        assert_eq!(empty.end_offset_for(0, leo), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
    }

    #[test]
    fn truncation_at_either_end_trims_the_epochs() {
        let (dir, mut c) = cache(&[(1, 0), (2, 10), (5, 30)]);
        c.truncate_from_end(30).unwrap();
        assert_eq!(c.entries(), vec![(1, 0), (2, 10)], "epoch 5's batches are gone");
        c.truncate_from_start(12).unwrap();
        assert_eq!(c.entries(), vec![(2, 12)], "epoch 1 ended before the new start; epoch 2 starts there");
        c.truncate_from_start(5).unwrap();
        assert_eq!(c.entries(), vec![(2, 12)], "a start below every epoch changes nothing");
        assert_eq!(LeaderEpochFileCache::load(dir.path()).unwrap().unwrap().entries(), vec![(2, 12)]);
    }

    #[test]
    fn a_damaged_checkpoint_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "1\n1\n0 0\n", "0\n2\n0 0\n", "0\n2\n3 5\n2 9\n", "0\n1\nx 0\n", "0\n1\n0 -4\n"] {
            std::fs::write(dir.path().join(FILE), bad).unwrap();
            assert!(LeaderEpochFileCache::load(dir.path()).unwrap().is_none(), "{bad:?}");
        }
        std::fs::remove_file(dir.path().join(FILE)).unwrap();
        assert!(LeaderEpochFileCache::load(dir.path()).unwrap().is_none(), "none yet");
    }
}
