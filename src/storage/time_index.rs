//! Kafka's `TimeIndex`: sparse map from a timestamp to the offset of the record that first
//! reached it in the segment. Entries are 12 bytes, big-endian (timestamp i64, relative
//! offset u32), appended only when the segment's largest timestamp grows.

use super::index_file::{IndexKind, SparseIndex};

pub const ENTRY_SIZE: usize = 12;

pub struct Timestamps;

impl IndexKind for Timestamps {
    const ENTRY_SIZE: usize = ENTRY_SIZE;
}

pub type TimeIndex = SparseIndex<Timestamps>;

fn timestamp(e: &[u8]) -> i64 {
    i64::from_be_bytes(e[0..8].try_into().unwrap())
}

fn rel_offset(e: &[u8]) -> i64 {
    u32::from_be_bytes(e[8..12].try_into().unwrap()) as i64
}

impl TimeIndex {
    /// The last entry: (largest timestamp indexed, its offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.file.last().map(|e| (timestamp(e), self.base_offset + rel_offset(e)))
    }

    /// Appends (timestamp, offset) if the timestamp is larger than the last entry's.
    pub fn maybe_append(&mut self, ts: i64, offset: i64) {
        if self.last_entry().is_some_and(|(t, _)| ts <= t) || self.file.is_full() {
            return;
        }
        let rel = offset - self.base_offset;
        assert!((0..=u32::MAX as i64).contains(&rel), "offset {offset} outside segment {}", self.base_offset);
        let mut e = [0u8; ENTRY_SIZE];
        e[0..8].copy_from_slice(&ts.to_be_bytes());
        e[8..12].copy_from_slice(&(rel as u32).to_be_bytes());
        self.file.append(&e);
    }

    /// The offset to start a timestamp search from: that of the last entry whose
    /// timestamp is < `target` (nothing before it can reach `target`), or the base offset.
    pub fn lookup(&self, target: i64) -> i64 {
        self.file
            .floor(target.saturating_sub(1), timestamp)
            .and_then(|i| self.file.entry(i))
            .map(|e| self.base_offset + rel_offset(e))
            .unwrap_or(self.base_offset)
    }

    pub fn sane(&self) -> bool {
        let ts = |i| self.file.entry(i).map(timestamp);
        (1..self.file.len()).all(|i| matches!((ts(i - 1), ts(i)), (Some(a), Some(b)) if b > a))
    }
}
