//! Kafka's `Cleaner`: one compaction pass over one partition.
//!
//! It reads the dirty part of the log (from the cleaner checkpoint up to the first
//! uncleanable offset) into an offset map — each key's last offset — then rewrites the
//! closed segments below that offset, group by group (consecutive segments whose sizes
//! add up to at most `segment.bytes`), keeping a record only if no later record has its
//! key. Tombstones (null values) stay until their segment is older than
//! `delete.retention.ms`; records without a key and records of aborted transactions are
//! dropped; control batches (transaction markers) are kept. A batch that keeps every
//! record is copied byte for byte; one that loses some is re-encoded with its own
//! compression codec, base sequence, producer id and epoch — the one place record data
//! is re-encoded. Offsets never change: removed records leave gaps that readers skip.
//!
//! All reading and writing happens without the log lock (closed segments never change);
//! only the swap (`Log::swap_in_cleaned`) takes it.

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::log::swap::{SegmentView, CLEANED};
use super::producer_state::AbortedTxn;
use super::{segment, Partition};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `log.cleaner.io.max.bytes.per.second`, shared by the cleaner threads.
pub struct Throttle {
    bytes_per_second: f64,
    window: Mutex<(Instant, f64)>,
}

impl Throttle {
    pub fn new(bytes_per_second: f64) -> Self {
        Throttle { bytes_per_second, window: Mutex::new((Instant::now(), 0.0)) }
    }

    /// Accounts `bytes` of cleaner I/O, sleeping while the rate is above the limit.
    pub fn account(&self, bytes: u64) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return;
        }
        let wait = {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if w.0.elapsed() > Duration::from_secs(1) {
                *w = (Instant::now(), 0.0);
            }
            w.1 += bytes as f64;
            let due = w.1 / self.bytes_per_second;
            Duration::from_secs_f64(due).saturating_sub(w.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    /// When the oldest tombstone kept by this pass may be removed (its segment is then
    /// older than `delete.retention.ms`): the log needs another pass by then.
    pub tombstones_due: Option<i64>,
}

/// Each key's last offset in the dirty section (Kafka's OffsetMap), bounded in memory.
struct OffsetMap {
    map: HashMap<Bytes, i64>,
    bytes: usize,
    limit: usize,
}

impl OffsetMap {
    /// Per entry: the key, the offset, and the table's own overhead.
    const ENTRY_OVERHEAD: usize = 48;

    fn put(&mut self, key: Bytes, offset: i64) {
        let len = key.len();
        if self.map.insert(key, offset).is_none() {
            self.bytes += len + Self::ENTRY_OVERHEAD;
        }
    }

    fn full(&self) -> bool {
        self.bytes >= self.limit
    }
}

/// Reads the batch at `pos` of a segment (header and all).
fn read_batch(seg: &SegmentView, pos: u64) -> io::Result<Option<(BatchHeader, Vec<u8>)>> {
    let Some(h) = segment::read_header(&seg.file, pos, seg.size)? else { return Ok(None) };
    let mut buf = vec![0u8; h.size];
    seg.file.read_exact_at(&mut buf, pos)?;
    Ok(Some((h, buf)))
}

fn decode(bytes: Vec<u8>) -> io::Result<Vec<kafka_protocol::records::Record>> {
    let mut b = Bytes::from(bytes);
    RecordBatchDecoder::decode(&mut b)
        .map(|set| set.records)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("undecodable batch: {e}")))
}

fn aborted(h: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    h.is_transactional()
        && !h.is_control()
        && aborted.iter().any(|a| a.producer_id == h.producer_id && a.first_offset <= h.base_offset && h.base_offset <= a.last_offset)
}

/// Builds the offset map over `[first_dirty, end)`; returns it and the offset up to which
/// it is complete (`end`, or the first segment it could not take whole).
fn build_offset_map(segs: &[SegmentView], first_dirty: i64, end: i64, limit: usize, throttle: &Throttle) -> io::Result<(OffsetMap, i64)> {
    let mut map = OffsetMap { map: HashMap::new(), bytes: 0, limit };
    for seg in segs.iter().filter(|s| s.next_offset > first_dirty) {
        if map.full() && seg.base > first_dirty {
            return Ok((map, seg.base));
        }
        let mut pos = 0;
        while let Some((h, buf)) = read_batch(seg, pos)? {
            pos += h.size as u64;
            throttle.account(h.size as u64);
            if h.last_offset() < first_dirty || h.is_control() {
                continue;
            }
            for r in decode(buf)? {
                if let Some(k) = r.key {
                    if r.offset >= first_dirty {
                        map.put(k, r.offset);
                    }
                }
            }
        }
    }
    Ok((map, end))
}

/// Rewrites one batch: `None` to drop it, the bytes to write otherwise.
fn clean_batch(
    h: &BatchHeader,
    buf: Vec<u8>,
    map: &OffsetMap,
    drop_tombstones: bool,
    tombstone_due: i64,
    aborted_txns: &[AbortedTxn],
    stats: &mut CleanStats,
) -> io::Result<Option<Vec<u8>>> {
    if h.is_control() {
        return Ok(Some(buf));
    }
    stats.records_read += h.record_count.max(0) as u64;
    if aborted(h, aborted_txns) {
        return Ok(None);
    }
    let records = decode(buf.clone())?;
    let total = records.len();
    let kept: Vec<_> = records
        .into_iter()
        .filter(|r| match &r.key {
            None => false,
            Some(k) => map.map.get(k).is_none_or(|last| *last <= r.offset) && !(drop_tombstones && r.value.is_none()),
        })
        .collect();
    stats.records_kept += kept.len() as u64;
    if kept.iter().any(|r| r.value.is_none()) {
        stats.tombstones_due = Some(stats.tombstones_due.map_or(tombstone_due, |d| d.min(tombstone_due)));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    if kept.len() == total {
        return Ok(Some(buf)); // nothing removed: the batch as the producer sent it
    }
    let compression = match h.compression() {
        1 => kafka_protocol::records::Compression::Gzip,
        2 => kafka_protocol::records::Compression::Snappy,
        3 => kafka_protocol::records::Compression::Lz4,
        4 => kafka_protocol::records::Compression::Zstd,
        _ => kafka_protocol::records::Compression::None,
    };
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(&mut out, kept.iter(), &RecordEncodeOptions { version: 2, compression })
        .map_err(|e| io::Error::other(format!("re-encoding a cleaned batch: {e}")))?;
    let mut out = out.to_vec();
    let rewritten = BatchHeader::parse(&out).map_err(|e| io::Error::other(format!("cleaned batch: {e:?}")))?;
    assert_eq!(rewritten.size, out.len(), "retained records of one batch encode as one batch");
    if h.attributes & batch::ATTR_TIMESTAMP_TYPE != 0 {
        // The encoder knows no LogAppendTime; keep the batch's timestamp type.
        let attrs = rewritten.attributes | batch::ATTR_TIMESTAMP_TYPE;
        out[batch::OFF_ATTRIBUTES..batch::OFF_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
        let crc = batch::compute_crc(&out);
        out[batch::OFF_CRC..batch::OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(Some(out))
}

/// Consecutive segments whose sizes add up to at most `max_bytes` (at least one each).
fn group_by_size(segs: &[SegmentView], max_bytes: u64) -> Vec<Vec<SegmentView>> {
    let mut groups: Vec<Vec<SegmentView>> = Vec::new();
    let mut size = 0u64;
    for s in segs {
        match groups.last_mut() {
            Some(g) if size + s.size <= max_bytes && s.next_offset - g[0].base <= i32::MAX as i64 => {
                size += s.size;
                g.push(s.clone());
            }
            _ => {
                size = s.size;
                groups.push(vec![s.clone()]);
            }
        }
    }
    groups
}

/// One cleaning pass over `part` from `first_dirty`. Returns the next first dirty offset
/// and what was done, or `None` when nothing below the uncleanable offset is dirty.
/// `force` cleans the clean section even when nothing is dirty (tombstones came due).
pub fn clean(
    part: &Partition,
    first_dirty: i64,
    force: bool,
    dedupe_bytes: usize,
    throttle: &Throttle,
    now_ms: i64,
) -> io::Result<Option<(i64, CleanStats)>> {
    let (config, segs, end, dir, aborted_txns) = {
        let log = part.log();
        let end = log.first_uncleanable_offset(now_ms);
        let start = log.log_start_offset();
        (log.config().clone(), log.segments_below(end), end, log.dir().to_owned(), log.aborted_between(start, end))
    };
    let Some(first) = segs.first() else { return Ok(None) };
    let first_dirty = first_dirty.max(first.base);
    if segs.last().is_none_or(|s| s.next_offset <= first_dirty) && !force {
        return Ok(None);
    }
    let (map, clean_end) = build_offset_map(&segs, first_dirty, end, dedupe_bytes, throttle)?;
    let to_clean: Vec<SegmentView> = segs.into_iter().filter(|s| s.next_offset <= clean_end).collect();
    let mut stats = CleanStats { segments_before: to_clean.len(), ..Default::default() };
    let horizon = now_ms.saturating_sub(config.delete_retention_ms);
    for group in group_by_size(&to_clean, config.segment_bytes) {
        let base = group[0].base;
        let path = dir.join(segment::file_name(base, CLEANED));
        let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&path)?);
        for seg in &group {
            let drop_tombstones = seg.largest_timestamp < horizon;
            let tombstone_due = seg.largest_timestamp.saturating_add(config.delete_retention_ms).saturating_add(1);
            let mut pos = 0;
            while let Some((h, buf)) = read_batch(seg, pos)? {
                pos += h.size as u64;
                stats.bytes_read += h.size as u64;
                throttle.account(h.size as u64);
                if let Some(kept) = clean_batch(&h, buf, &map, drop_tombstones, tombstone_due, &aborted_txns, &mut stats)? {
                    debug_assert!(kept.len() >= HEADER_LEN);
                    out.write_all(&kept)?;
                    stats.bytes_written += kept.len() as u64;
                    throttle.account(kept.len() as u64);
                }
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let bases: Vec<i64> = group.iter().map(|s| s.base).collect();
        if !part.log().swap_in_cleaned(&bases, now_ms)? {
            tracing::debug!(topic = %part.topic, partition = part.index, base, "segments changed while cleaning; skipped");
            continue;
        }
        stats.segments_after += 1;
    }
    part.notify();
    Ok(Some((clean_end, stats)))
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
