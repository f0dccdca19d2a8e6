//! Kafka's ProducerStateManager, per partition: for every idempotent producer the epoch
//! and the last five batches it wrote (first/last sequence and offsets), so that a retried
//! batch is recognised and answered with its original offsets instead of being written
//! twice, a gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER) and an old
//! epoch is fenced (INVALID_PRODUCER_EPOCH).
//!
//! It also follows transactions: the first offset of every producer's open transaction
//! (the last stable offset is the smallest of them) and the aborted transactions, which
//! read_committed fetches return so clients drop aborted records.
//!
//! The state is snapshotted into `<offset>.snapshot` files next to the segments (at each
//! roll and at a clean stop) and rebuilt at start from the newest snapshot at or below the
//! log end plus the batch headers after it.

use super::batch::BatchHeader;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::Path;

/// How many recent batches per producer are kept for duplicate detection (Kafka's 5, the
/// most in-flight requests an idempotent producer may have).
pub const BATCHES_KEPT: usize = 5;
const SNAPSHOT_VERSION: i16 = 2;
const SNAPSHOTS_KEPT: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    Append,
    /// Already in the log at these offsets.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("{0}")]
    OutOfOrder(String),
}

fn in_sequence(last: i32, next_first: i32) -> bool {
    next_first == if last == i32::MAX { 0 } else { last + 1 }
}

/// A transaction that ended with an abort marker: its records, from `first_offset` to the
/// marker at `last_offset`, are to be dropped by read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// producer id → first offset of its open transaction.
    ongoing: BTreeMap<i64, i64>,
    /// Ordered by `last_offset` (markers are appended in offset order).
    aborted: Vec<AbortedTxn>,
}

impl ProducerStateManager {
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty() && self.ongoing.is_empty() && self.aborted.is_empty()
    }

    /// Checks a batch of an idempotent producer before it is appended.
    pub fn check(&self, h: &BatchHeader) -> Result<ProducerCheck, ProducerError> {
        debug_assert!(h.has_producer_id());
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state went with deleted segments): any sequence.
            return Ok(ProducerCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch { producer_id: h.producer_id, epoch: h.producer_epoch, current: entry.epoch });
        }
        if h.base_sequence < 0 {
            // A coordinator's write (transactional offsets): no sequence to check.
            return Ok(ProducerCheck::Append);
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(ProducerError::OutOfOrder(format!(
                    "producer {} starts epoch {} at sequence {}, not 0",
                    h.producer_id, h.producer_epoch, h.base_sequence
                )));
            }
            return Ok(ProducerCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq) {
            return Ok(ProducerCheck::Duplicate { first_offset: dup.first_offset, last_offset: dup.last_offset });
        }
        match entry.last_seq() {
            Some(last) if !in_sequence(last, h.base_sequence) => Err(ProducerError::OutOfOrder(format!(
                "producer {} epoch {}: sequence {} does not follow {}",
                h.producer_id, h.producer_epoch, h.base_sequence, last
            ))),
            _ => Ok(ProducerCheck::Append),
        }
    }

    /// Records an appended batch (also used when replaying the log at start).
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, timestamp: i64) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        if h.is_transactional() {
            self.ongoing.entry(h.producer_id).or_insert(first_offset);
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.base_sequence < 0 {
            return; // a coordinator's write carries no sequence to remember
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset,
            last_offset: first_offset + h.last_offset_delta as i64,
            timestamp,
        });
        while entry.batches.len() > BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// Every producer with state here: (id, entry, first offset of its open transaction).
    pub fn active(&self) -> Vec<(i64, &ProducerStateEntry, Option<i64>)> {
        let mut out: Vec<_> = self.producers.iter().map(|(pid, e)| (*pid, e, self.ongoing.get(pid).copied())).collect();
        out.sort_by_key(|(pid, _, _)| *pid);
        out
    }

    /// A commit or abort marker of `producer_id` at `marker_offset` ends its transaction.
    /// A marker of a newer epoch (the coordinator fenced the producer) moves the producer
    /// to that epoch, so writes of the old epoch are refused from then on.
    pub fn complete_txn(&mut self, producer_id: i64, producer_epoch: i16, marker_offset: i64, commit: bool) {
        if let Some(entry) = self.producers.get_mut(&producer_id) {
            if producer_epoch > entry.epoch {
                entry.epoch = producer_epoch;
                entry.batches.clear();
            }
        } else if producer_epoch >= 0 {
            self.producers.insert(producer_id, ProducerStateEntry { epoch: producer_epoch, batches: Default::default() });
        }
        if let Some(first_offset) = self.ongoing.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn { producer_id, first_offset, last_offset: marker_offset });
            }
        }
    }

    /// The first offset of the oldest open transaction: the last stable offset, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// Aborted transactions with records in `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..].iter().filter(|a| a.first_offset < to).copied().collect()
    }

    /// Forgets aborted transactions wholly below the log start offset.
    pub fn prune_below(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }

    // ---- snapshots ----

    /// Writes `<offset>.snapshot` (state as of `offset`) atomically, and drops older ones.
    pub fn take_snapshot(&self, dir: &Path, offset: i64) -> io::Result<()> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        let sorted: BTreeMap<_, _> = self.producers.iter().collect();
        for (pid, e) in sorted {
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&(e.batches.len() as i32).to_be_bytes());
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        body.extend_from_slice(&(self.ongoing.len() as i32).to_be_bytes());
        for (pid, first) in &self.ongoing {
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&first.to_be_bytes());
        }
        body.extend_from_slice(&(self.aborted.len() as i32).to_be_bytes());
        for a in &self.aborted {
            body.extend_from_slice(&a.producer_id.to_be_bytes());
            body.extend_from_slice(&a.first_offset.to_be_bytes());
            body.extend_from_slice(&a.last_offset.to_be_bytes());
        }
        let mut file = Vec::with_capacity(body.len() + 6);
        file.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        file.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file.extend_from_slice(&body);
        super::checkpoint::write_atomically(&dir.join(snapshot_name(offset)), &file)?;
        let all = list_snapshots(dir)?;
        for old in all.iter().rev().skip(SNAPSHOTS_KEPT) {
            let _ = std::fs::remove_file(dir.join(snapshot_name(*old)));
        }
        Ok(())
    }

    /// Loads the newest intact snapshot at or below `max_offset`; returns it with its offset
    /// (an empty state at `None` when there is none). Snapshots above `max_offset`
    /// (written before a truncation) are deleted.
    pub fn load(dir: &Path, max_offset: i64) -> io::Result<(Self, Option<i64>)> {
        let offsets = list_snapshots(dir)?;
        for &o in offsets.iter().filter(|&&o| o > max_offset) {
            let _ = std::fs::remove_file(dir.join(snapshot_name(o)));
        }
        for &o in offsets.iter().rev().filter(|&&o| o <= max_offset) {
            match std::fs::read(dir.join(snapshot_name(o))).ok().and_then(|b| decode(&b)) {
                Some(state) => return Ok((state, Some(o))),
                None => tracing::warn!(dir = %dir.display(), offset = o, "ignoring an unreadable producer snapshot"),
            }
        }
        Ok((Self::default(), None))
    }
}

/// Removes the snapshots taken past `offset` (the log was truncated below them).
pub fn delete_snapshots_above(dir: &Path, offset: i64) -> io::Result<()> {
    for o in list_snapshots(dir)? {
        if o > offset {
            std::fs::remove_file(dir.join(snapshot_name(o)))?;
        }
    }
    Ok(())
}

pub fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(o) = name.to_str().and_then(|n| n.strip_suffix(".snapshot")).filter(|b| b.len() == 20).and_then(|b| b.parse().ok()) {
            out.push(o);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn decode(file: &[u8]) -> Option<ProducerStateManager> {
    let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h.to_vec())
    };
    let mut b = file;
    let version = i16::from_be_bytes(take(&mut b, 2)?.try_into().ok()?);
    let crc = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?);
    if version != SNAPSHOT_VERSION || crc32c::crc32c(b) != crc {
        return None;
    }
    let i32_ = |b: &mut &[u8]| Some(i32::from_be_bytes(take(b, 4)?.try_into().ok()?));
    let i64_ = |b: &mut &[u8]| Some(i64::from_be_bytes(take(b, 8)?.try_into().ok()?));
    let mut state = ProducerStateManager::default();
    let count = i32_(&mut b)?;
    for _ in 0..count.max(0) {
        let pid = i64_(&mut b)?;
        let epoch = i16::from_be_bytes(take(&mut b, 2)?.try_into().ok()?);
        let n = i32_(&mut b)?.clamp(0, BATCHES_KEPT as i32);
        let mut batches = VecDeque::new();
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: i32_(&mut b)?,
                last_seq: i32_(&mut b)?,
                first_offset: i64_(&mut b)?,
                last_offset: i64_(&mut b)?,
                timestamp: i64_(&mut b)?,
            });
        }
        state.producers.insert(pid, ProducerStateEntry { epoch, batches });
    }
    for _ in 0..i32_(&mut b)?.max(0) {
        let pid = i64_(&mut b)?;
        state.ongoing.insert(pid, i64_(&mut b)?);
    }
    for _ in 0..i32_(&mut b)?.max(0) {
        state.aborted.push(AbortedTxn { producer_id: i64_(&mut b)?, first_offset: i64_(&mut b)?, last_offset: i64_(&mut b)? });
    }
    b.is_empty().then_some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::test_support::batch;

    fn header(pid: i64, epoch: i16, seq: i32, records: usize) -> BatchHeader {
        let values: Vec<&[u8]> = (0..records).map(|_| &b"v"[..]).collect();
        let mut b = batch(&values, 0);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        BatchHeader::parse(&b).unwrap()
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut s = ProducerStateManager::default();
        let b0 = header(7, 0, 0, 3);
        assert_eq!(s.check(&b0), Ok(ProducerCheck::Append));
        s.update(&b0, 100, 1);
        let b1 = header(7, 0, 3, 2);
        assert_eq!(s.check(&b1), Ok(ProducerCheck::Append));
        s.update(&b1, 103, 1);
        // A retry of either batch is a duplicate with its original offsets.
        assert_eq!(s.check(&b0), Ok(ProducerCheck::Duplicate { first_offset: 100, last_offset: 102 }));
        assert_eq!(s.check(&b1), Ok(ProducerCheck::Duplicate { first_offset: 103, last_offset: 104 }));
        // A gap is refused.
        assert!(matches!(s.check(&header(7, 0, 9, 1)), Err(ProducerError::OutOfOrder(_))));
        // A new epoch must start at 0; an old epoch is fenced once a newer one wrote.
        assert!(matches!(s.check(&header(7, 1, 5, 1)), Err(ProducerError::OutOfOrder(_))));
        let e1 = header(7, 1, 0, 1);
        assert_eq!(s.check(&e1), Ok(ProducerCheck::Append));
        s.update(&e1, 105, 2);
        assert!(matches!(s.check(&header(7, 0, 5, 1)), Err(ProducerError::InvalidEpoch { .. })));
        // Unknown producers may start anywhere.
        assert_eq!(s.check(&header(8, 0, 42, 1)), Ok(ProducerCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.update(&header(1, 0, i, 1), 10 + i as i64, 0);
        }
        assert_eq!(s.entry(1).unwrap().batches.len(), BATCHES_KEPT);
        assert!(matches!(s.check(&header(1, 0, 1, 1)), Err(ProducerError::OutOfOrder(_))), "too old to be recognised: out of order");
        assert!(matches!(s.check(&header(1, 0, 6, 1)), Ok(ProducerCheck::Duplicate { first_offset: 16, .. })));
    }

    #[test]
    fn sequences_wrap() {
        let h = header(1, 0, i32::MAX, 2);
        assert_eq!(h.last_sequence(), 0);
        let mut s = ProducerStateManager::default();
        s.update(&h, 0, 0);
        assert_eq!(s.check(&header(1, 0, 1, 1)), Ok(ProducerCheck::Append));
    }

    #[test]
    fn a_marker_of_a_newer_epoch_fences_the_old_one() {
        let mut s = ProducerStateManager::default();
        let mut h = header(5, 0, 0, 2);
        h.attributes |= crate::storage::batch::ATTR_TRANSACTIONAL;
        s.update(&h, 10, 0);
        s.complete_txn(5, 1, 12, false); // the coordinator aborted with the bumped epoch
        assert!(matches!(s.check(&header(5, 0, 2, 1)), Err(ProducerError::InvalidEpoch { current: 1, .. })));
        assert_eq!(s.check(&header(5, 1, 0, 1)), Ok(ProducerCheck::Append));
    }

    #[test]
    fn coordinator_writes_without_sequence_are_not_deduplicated() {
        let mut s = ProducerStateManager::default();
        let mut h = header(5, 0, -1, 3);
        h.attributes |= crate::storage::batch::ATTR_TRANSACTIONAL;
        s.update(&h, 0, 0);
        assert_eq!(s.check(&h), Ok(ProducerCheck::Append), "a second offset commit of the transaction");
        s.complete_txn(5, 1, 3, true);
        assert!(matches!(s.check(&header(5, 0, -1, 1)), Err(ProducerError::InvalidEpoch { .. })), "old epochs stay fenced");
    }

    #[test]
    fn transactions_give_the_stable_offset_and_the_aborted_list() {
        let mut s = ProducerStateManager::default();
        let mut h = header(5, 0, 0, 2);
        h.attributes |= crate::storage::batch::ATTR_TRANSACTIONAL;
        s.update(&h, 10, 0);
        let mut h2 = header(6, 0, 0, 1);
        h2.attributes |= crate::storage::batch::ATTR_TRANSACTIONAL;
        s.update(&h2, 12, 0);
        assert_eq!(s.first_unstable_offset(), Some(10));
        s.complete_txn(5, 0, 13, false);
        assert_eq!(s.first_unstable_offset(), Some(12));
        s.complete_txn(6, 0, 14, true);
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.aborted_between(0, 100), vec![AbortedTxn { producer_id: 5, first_offset: 10, last_offset: 13 }]);
        assert!(s.aborted_between(14, 100).is_empty());
        assert!(s.aborted_between(0, 10).is_empty());
        let dir = tempfile::tempdir().unwrap();
        s.take_snapshot(dir.path(), 15).unwrap();
        let (back, _) = ProducerStateManager::load(dir.path(), 15).unwrap();
        assert_eq!(back.aborted_between(0, 100).len(), 1);
    }

    #[test]
    fn snapshots_round_trip_and_newer_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStateManager::default();
        s.update(&header(3, 2, 0, 4), 50, 9);
        s.take_snapshot(dir.path(), 54).unwrap();
        s.update(&header(3, 2, 4, 1), 54, 9);
        s.take_snapshot(dir.path(), 55).unwrap();
        let (back, at) = ProducerStateManager::load(dir.path(), 54).unwrap();
        assert_eq!(at, Some(54));
        assert_eq!(back.entry(3).unwrap().batches.len(), 1);
        assert!(!dir.path().join(snapshot_name(55)).exists(), "a snapshot past the log end is deleted");
        std::fs::write(dir.path().join(snapshot_name(54)), b"garbage").unwrap();
        let (empty, at) = ProducerStateManager::load(dir.path(), 100).unwrap();
        assert!(empty.is_empty() && at.is_none());
    }
}
