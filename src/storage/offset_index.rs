//! Kafka's `OffsetIndex`: sparse map from an offset (relative to the segment's base) to the
//! byte position of a batch in the `.log` file. Entries are 8 bytes, big-endian
//! (relative offset u32, position u32), one every `index.interval.bytes` of log.

use super::index_file::{IndexKind, SparseIndex};

pub const ENTRY_SIZE: usize = 8;

pub struct Offsets;

impl IndexKind for Offsets {
    const ENTRY_SIZE: usize = ENTRY_SIZE;
}

pub type OffsetIndex = SparseIndex<Offsets>;

fn key(e: &[u8]) -> i64 {
    u32::from_be_bytes(e[0..4].try_into().unwrap()) as i64
}

fn position(e: &[u8]) -> u64 {
    u32::from_be_bytes(e[4..8].try_into().unwrap()) as u64
}

impl OffsetIndex {
    pub fn last_offset(&self) -> Option<i64> {
        self.file.last().map(|e| self.base_offset + key(e))
    }

    /// Records that the batch whose last offset is `offset` starts at `pos`.
    pub fn append(&mut self, offset: i64, pos: u64) {
        let rel = offset - self.base_offset;
        assert!((0..=u32::MAX as i64).contains(&rel), "offset {offset} outside segment {}", self.base_offset);
        assert!(pos <= u32::MAX as u64);
        if let Some(last) = self.last_offset() {
            assert!(offset > last, "offset index must grow: {offset} after {last}");
        }
        let mut e = [0u8; ENTRY_SIZE];
        e[0..4].copy_from_slice(&(rel as u32).to_be_bytes());
        e[4..8].copy_from_slice(&(pos as u32).to_be_bytes());
        self.file.append(&e);
    }

    /// The position to start scanning from for `target`: that of the last indexed batch whose
    /// last offset is ≤ `target` (every batch there or after ends at or past it), or 0.
    pub fn lookup(&self, target: i64) -> u64 {
        self.lookup_entry(target).map_or(0, |(_, pos)| pos)
    }

    /// The last entry whose offset is ≤ `target`: (that batch's last offset, its position).
    pub fn lookup_entry(&self, target: i64) -> Option<(i64, u64)> {
        let i = self.file.floor(target - self.base_offset, key)?;
        let e = self.file.entry(i)?;
        Some((self.base_offset + key(e), position(e)))
    }

    /// Checks that entries grow and stay inside a log of `log_size` bytes (an index that
    /// cannot be mapped is not sane: it is rebuilt).
    pub fn sane(&self, log_size: u64) -> bool {
        let mut prev: Option<(i64, u64)> = None;
        for i in 0..self.file.len() {
            let Some(e) = self.file.entry(i) else { return false };
            let (k, p) = (key(e), position(e));
            if p >= log_size.max(1) || prev.is_some_and(|(pk, pp)| k <= pk || p <= pp) {
                return false;
            }
            prev = Some((k, p));
        }
        true
    }
}
