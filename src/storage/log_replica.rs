//! The follower's side of a log: batches appended exactly as the leader wrote them
//! (offsets, leader epochs, timestamps and CRCs untouched; every CRC checked), and
//! truncation to the point OffsetForLeaderEpoch gives a follower of a new leader
//! (KIP-101, KIP-279). Kept apart from `log.rs`, whose appends are the leader's.

use super::{AppendError, AppendInfo, Log};
use crate::storage::batch::{self, BatchHeader, HEADER_LEN};
use crate::storage::segment::{BatchMeta, LogSegment};
use std::io::{self, IoSlice};

impl Log {
    /// Appends batches copied from the leader. They must continue this log exactly (the
    /// first at the log end, each after the one before) and be intact; nothing is
    /// rewritten, so the replicas' segments stay byte-identical.
    pub fn append_replicated(&mut self, batches: &[(&[u8], BatchHeader)], now_ms: i64) -> Result<AppendInfo, AppendError> {
        assert!(!batches.is_empty());
        let first_offset = self.next_offset();
        let mut next = first_offset;
        let mut metas = Vec::with_capacity(batches.len());
        for (bytes, h) in batches {
            if h.base_offset != next {
                return Err(AppendError::Invalid("a replicated batch does not continue the log at its end"));
            }
            if h.size != bytes.len() || h.last_offset_delta < 0 || batch::compute_crc(bytes) != h.crc {
                return Err(AppendError::Invalid("a replicated batch is corrupt (size or CRC)"));
            }
            metas.push(BatchMeta { last_offset: h.last_offset(), max_timestamp: h.max_timestamp, size: bytes.len() });
            next = h.last_offset() + 1;
        }
        let last_offset = next - 1;
        let total: u64 = metas.iter().map(|m| m.size as u64).sum();
        if self.active().should_roll(total, last_offset, self.config.segment_bytes, self.config.segment_ms, now_ms) {
            self.roll(now_ms)?;
        }
        // Each epoch's start is on disk before its first batch can be.
        for (_, h) in batches {
            self.epochs.assign(h.partition_leader_epoch, h.base_offset)?;
        }
        let mut iov: Vec<IoSlice<'_>> = batches.iter().map(|(b, _)| IoSlice::new(b)).collect();
        self.active_mut().append(&metas, &mut iov)?;
        self.unflushed_messages += last_offset - first_offset + 1;
        for (bytes, h) in batches {
            if !h.has_producer_id() {
                continue;
            }
            if h.is_control() {
                if let Some(kind) = batch::control_type(&bytes[HEADER_LEN..]) {
                    self.producers.complete_txn(h.producer_id, h.producer_epoch, h.base_offset, kind == batch::CONTROL_COMMIT);
                }
            } else {
                self.producers.update(h, h.base_offset, h.max_timestamp);
            }
        }
        Ok(AppendInfo { first_offset, last_offset, log_append_time: -1, log_start_offset: self.log_start_offset, duplicate: false })
    }

    /// Removes every offset from `offset` on (a batch straddling it goes whole): segments
    /// wholly past it are deleted, the one holding it is cut, and the producer state and
    /// leader epochs are rebuilt for what is left. Below the log start, the log is emptied
    /// and starts at `offset`.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> io::Result<()> {
        if offset >= self.next_offset() {
            return Ok(());
        }
        tracing::info!(dir = %self.dir.display(), from = offset, to = self.next_offset(), "truncating the log");
        let restart_at = (offset < self.log_start_offset).then_some(offset);
        while let Some(&base) = self.segments.keys().next_back() {
            if restart_at.is_none() && (base < offset || (self.segments.len() == 1 && base == offset)) {
                break;
            }
            let (_, seg) = self.segments.pop_last().expect("a segment");
            seg.delete()?;
        }
        match self.segments.keys().next_back().copied() {
            Some(base) => {
                let seg = self.segments.get_mut(&base).expect("the last segment");
                seg.truncate_to(offset, now_ms)?;
            }
            None => {
                let start = restart_at.unwrap_or(offset);
                let seg = LogSegment::create(&self.dir, start, self.config.index_interval_bytes, self.config.segment_index_bytes, now_ms)?;
                self.segments.insert(start, seg);
                self.log_start_offset = start;
            }
        }
        // Flushes pending on deleted files are moot; the kept ones still apply.
        self.recovery_point = self.recovery_point.min(self.next_offset());
        // Producer snapshots past the new end describe batches that are gone.
        let end = self.next_offset();
        crate::storage::producer_state::delete_snapshots_above(&self.dir, end)?;
        self.load_producer_state()?;
        self.epochs.truncate_from_end(end)?;
        if restart_at.is_some() {
            self.epochs.truncate_from_start(end)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_replica_tests.rs"]
mod tests;
