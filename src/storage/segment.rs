//! Kafka's `LogSegment`: one `<baseOffset>.log` file of record batches with its sparse
//! `.index` and `.timeindex`.
//!
//! Only the active (last) segment is appended to. Reads never copy record bytes into the
//! process: they locate a batch through the index plus a short header scan and hand back a
//! file range for `sendfile`. Recovery re-reads batches, checks every CRC and truncates the
//! file at the first torn or corrupt batch.

use super::batch::{BatchHeader, HEADER_LEN};
use super::offset_index::OffsetIndex;
use super::segment_recovery;
use super::time_index::TimeIndex;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Metadata of one batch being appended; its bytes travel separately as `IoSlice`s.
#[derive(Debug, Clone, Copy)]
pub struct BatchMeta {
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: usize,
}

/// A segment whose batch chain is broken where a read walked it: which file, which byte,
/// what was wrong. Fetches answer CORRUPT_MESSAGE for it instead of skipping data.
#[derive(Debug, thiserror::Error)]
#[error("segment {} is corrupt at byte {position}: {detail}; stop the broker and move the segment aside or restore it from a replica", file.display())]
pub struct Corruption {
    pub file: PathBuf,
    pub position: u64,
    pub detail: String,
}

/// What recovery found in a segment.
#[derive(Debug, PartialEq, Eq)]
pub struct RecoveryResult {
    pub valid_bytes: u64,
    /// Bytes cut off the end of the file (a torn or unreadable tail).
    pub truncated_bytes: u64,
    /// Bytes cut out of the middle of the file (corrupt batches with sound ones after them).
    pub salvaged_bytes: u64,
    pub next_offset: i64,
}

pub struct LogSegment {
    pub base_offset: i64,
    dir: PathBuf,
    file: Arc<File>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval: u64,
    bytes_since_last_index_entry: u64,
    /// Largest batch max-timestamp in the segment and the last offset of that batch (-1: none).
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    next_offset: i64,
    created_ms: i64,
}

fn open_log(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).open(path)
}

impl LogSegment {
    pub fn create(dir: &Path, base_offset: i64, index_interval: u64, index_max: u64, now_ms: i64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join(file_name(base_offset, "log")))?;
        let oi = OffsetIndex::create(&dir.join(file_name(base_offset, "index")), base_offset, index_max)?;
        let ti = TimeIndex::create(&dir.join(file_name(base_offset, "timeindex")), base_offset, index_max)?;
        Ok(Self::assemble(dir, base_offset, file, 0, (oi, ti), index_interval, now_ms))
    }

    /// A segment over an open log file and its indexes, before any batch is known.
    fn assemble(
        dir: &Path,
        base_offset: i64,
        file: File,
        size: u64,
        (offset_index, time_index): (OffsetIndex, TimeIndex),
        index_interval: u64,
        now_ms: i64,
    ) -> Self {
        LogSegment {
            base_offset,
            dir: dir.to_owned(),
            file: Arc::new(file),
            size,
            offset_index,
            time_index,
            index_interval,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            next_offset: base_offset,
            created_ms: now_ms,
        }
    }

    /// Opens an existing segment. With `trust` (a clean shutdown, or a segment below the
    /// recovery point) trimmed, sane indexes are used as they are; anything else is rebuilt
    /// by `recover`, which also truncates a torn tail. Returns the segment and, when it was
    /// recovered, what recovery found.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
        index_max: u64,
        trust: bool,
        next_base: Option<i64>,
        now_ms: i64,
    ) -> io::Result<(Self, Option<RecoveryResult>)> {
        let file = open_log(&dir.join(file_name(base_offset, "log")), false)?;
        let size = file.metadata()?.len();
        let oi_path = dir.join(file_name(base_offset, "index"));
        let ti_path = dir.join(file_name(base_offset, "timeindex"));
        let trusted = if trust {
            match (
                OffsetIndex::open_trimmed(&oi_path, base_offset, index_max)?,
                TimeIndex::open_trimmed(&ti_path, base_offset, index_max)?,
            ) {
                (Some(oi), Some(ti)) if oi.sane(size) && ti.sane() => Some((oi, ti)),
                _ => None,
            }
        } else {
            None
        };
        let needs_recovery = trusted.is_none();
        let indexes = match trusted {
            Some(pair) => pair,
            None => (
                OffsetIndex::create(&oi_path, base_offset, index_max)?,
                TimeIndex::create(&ti_path, base_offset, index_max)?,
            ),
        };
        let mut seg = Self::assemble(dir, base_offset, file, size, indexes, index_interval, now_ms);
        if needs_recovery {
            let r = seg.recover(next_base, now_ms)?;
            return Ok((seg, Some(r)));
        }
        // Trusted: learn the segment's next offset and largest timestamp from its tail.
        let r = seg.load_tail_state(next_base, now_ms)?;
        Ok((seg, r))
    }

    /// Reads the header of the batch at `pos`; `None` past the end or for a torn header.
    pub fn header_at(&self, pos: u64) -> io::Result<Option<BatchHeader>> {
        read_header(&self.file, pos, self.size)
    }

    /// Finds the last batch by scanning forward from the last index entry; recovers the
    /// segment instead when the index does not fit the log.
    fn load_tail_state(&mut self, next_base: Option<i64>, now_ms: i64) -> io::Result<Option<RecoveryResult>> {
        let start = self.offset_index.last_offset().map(|o| self.offset_index.lookup(o)).unwrap_or(0);
        let mut pos = start;
        while let Some(h) = self.header_at(pos)? {
            self.next_offset = h.last_offset() + 1;
            pos += h.size as u64;
        }
        if pos != self.size {
            // The trusted index does not fit the log; recover instead of guessing.
            return self.recover(next_base, now_ms).map(Some);
        }
        if let Some((ts, off)) = self.time_index.last_entry() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = off;
        }
        Ok(None)
    }

    /// Re-reads every batch, verifying its CRC, and rebuilds both indexes. A torn or
    /// corrupt tail is truncated; a corrupt stretch with sound batches after it is cut out
    /// of the file instead (see `segment_recovery`), so no readable batch is ever lost.
    /// `next_base` is the following segment's base offset (`None` for the last segment).
    pub fn recover(&mut self, next_base: Option<i64>, now_ms: i64) -> io::Result<RecoveryResult> {
        self.recover_inner(next_base, now_ms, true)
    }

    fn recover_inner(&mut self, next_base: Option<i64>, now_ms: i64, may_salvage: bool) -> io::Result<RecoveryResult> {
        self.offset_index.file().truncate_entries(0)?;
        self.time_index.file().truncate_entries(0)?;
        self.offset_index.file().reopen_for_append()?;
        self.time_index.file().reopen_for_append()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        let file = self.file.clone();
        let size = self.size;
        let walk = segment_recovery::walk(&file, size, self.base_offset, next_base, |pos, h| {
            self.index_batch(h.last_offset(), h.max_timestamp, pos, h.size as u64);
        })?;
        let name = file_name(self.base_offset, "log");
        if may_salvage && walk.needs_salvage(size) {
            let cut: u64 = walk.holes.iter().map(|h| h.end - h.start).sum();
            tracing::error!(
                file = %self.dir.join(&name).display(),
                holes = ?walk.holes,
                "corrupt record batches in the middle of a segment: cutting out only the unreadable bytes \
                 (their offsets stay unused); the original file is kept as {name}.corrupted-{now_ms}; \
                 check the disk"
            );
            let fixed = segment_recovery::salvage(&self.dir, &name, &file, size, &walk.holes, now_ms)?;
            self.size = fixed.metadata()?.len();
            self.file = Arc::new(fixed);
            let mut again = self.recover_inner(next_base, now_ms, false)?;
            again.salvaged_bytes += cut;
            return Ok(again);
        }
        let valid = walk.holes.first().map_or(size, |h| h.start);
        if valid < size {
            if next_base.is_some() {
                tracing::error!(
                    file = %self.dir.join(&name).display(), from_byte = valid, bytes = size - valid,
                    "unreadable bytes at the end of a closed segment removed; later segments are kept"
                );
            }
            self.file.set_len(valid)?;
            self.size = valid;
        }
        self.next_offset = walk.next_offset;
        Ok(RecoveryResult { valid_bytes: valid, truncated_bytes: size - valid, salvaged_bytes: 0, next_offset: self.next_offset })
    }

    fn index_batch(&mut self, last_offset: i64, max_timestamp: i64, pos: u64, size: u64) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        // The index is sparse: when a tiny `segment.index.bytes` fills up in the middle of
        // one append, later batches simply go unindexed (lookups scan a little further) and
        // the next append rolls the segment.
        if self.bytes_since_last_index_entry > self.index_interval && !self.offset_index.is_full() {
            self.offset_index.append(last_offset, pos);
            // Batches without timestamps (-1, e.g. Sarama's) give the time index nothing.
            if self.max_timestamp >= 0 {
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
    }

    /// Appends batches (already stamped with their offsets) in one positioned vectored
    /// write. `data` concatenates exactly the batches described by `metas`.
    pub fn append(&mut self, metas: &[BatchMeta], data: &mut [IoSlice<'_>]) -> io::Result<()> {
        let total: usize = metas.iter().map(|m| m.size).sum();
        debug_assert_eq!(total, data.iter().map(|s| s.len()).sum::<usize>());
        let start = self.size;
        if let Err(e) = write_all_at(&self.file, data, start) {
            // Leave no partial batch behind: the log stays as it was before this append.
            let _ = self.file.set_len(start);
            return Err(e);
        }
        let mut pos = start;
        for m in metas {
            assert!(m.last_offset >= self.next_offset, "offsets must grow");
            self.index_batch(m.last_offset, m.max_timestamp, pos, m.size as u64);
            self.next_offset = m.last_offset + 1;
            pos += m.size as u64;
        }
        self.size = pos;
        Ok(())
    }

    /// Whether appending `bytes` more (ending at `last_offset`) requires a new segment first.
    pub fn should_roll(&self, bytes: u64, last_offset: i64, segment_bytes: u64, segment_ms: i64, now_ms: i64) -> bool {
        if self.size == 0 {
            return false;
        }
        self.size + bytes > segment_bytes
            || now_ms - self.created_ms >= segment_ms
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > u32::MAX as i64
    }

    /// The position of the first batch that holds an offset ≥ `target` (with its header).
    ///
    /// The batch chain walked from the index entry is checked as it goes: the first batch
    /// must be the one the index names, every header must parse and fit in the file, and
    /// offsets must grow and stay below the segment's end. A flipped bit in a length or an
    /// offset would otherwise send the walk into the middle of other batches and serve
    /// records other than the ones asked for; here it is a `Corruption` error instead.
    pub fn translate_offset(&self, target: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let entry = self.offset_index.lookup_entry(target);
        let mut pos = entry.map_or(0, |(_, p)| p);
        let mut after = self.base_offset - 1;
        while pos < self.size {
            let bad = |detail: String| io::Error::new(io::ErrorKind::InvalidData, Corruption { file: self.dir.join(file_name(self.base_offset, "log")), position: pos, detail });
            let h = match self.header_at(pos)? {
                Some(h) => h,
                None => return Err(bad("no valid batch header there".into())),
            };
            if let Some((indexed, _)) = entry.filter(|(_, p)| *p == pos) {
                if h.last_offset() != indexed {
                    return Err(bad(format!("the offset index puts the batch ending at offset {indexed} there, but the batch there ends at {}", h.last_offset())));
                }
            } else if h.base_offset <= after {
                return Err(bad(format!("batch base offset {} does not follow offset {after}", h.base_offset)));
            }
            if pos + h.size as u64 > self.size || h.last_offset_delta < 0 || h.last_offset() >= self.next_offset {
                return Err(bad(format!(
                    "batch of {} bytes for offsets {}..={} does not fit the segment ({} bytes, offsets below {})",
                    h.size, h.base_offset, h.last_offset(), self.size, self.next_offset
                )));
            }
            if h.last_offset() >= target {
                return Ok(Some((pos, h)));
            }
            after = h.last_offset();
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// The first batch whose max timestamp is ≥ `ts`, searching from `min_offset`.
    pub fn find_timestamp(&self, ts: i64, min_offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let from = self.time_index.lookup(ts).max(min_offset);
        let mut pos = self.offset_index.lookup(from);
        while let Some(h) = self.header_at(pos)? {
            if h.max_timestamp >= ts && h.last_offset() >= min_offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Removes every batch that holds `offset` or a later one (a batch straddling `offset`
    /// goes whole, as in Kafka), rebuilds the indexes from what is left and leaves the
    /// segment ready for appends. Returns how many bytes went.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> io::Result<u64> {
        let Some((pos, _)) = self.translate_offset(offset)? else {
            self.reopen_for_append()?;
            return Ok(0);
        };
        let removed = self.size - pos;
        self.file.set_len(pos)?;
        self.size = pos;
        self.recover_inner(None, now_ms, false)?;
        self.reopen_for_append()?;
        Ok(removed)
    }

    /// Closes the segment for appends: final time-index entry, trimmed indexes.
    pub fn on_become_inactive(&mut self) -> io::Result<()> {
        if self.max_timestamp >= 0 {
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
        self.offset_index.file().trim()?;
        self.time_index.file().trim()
    }

    /// Makes a trimmed (reopened) segment appendable again.
    pub fn reopen_for_append(&mut self) -> io::Result<()> {
        self.offset_index.file().reopen_for_append()?;
        self.time_index.file().reopen_for_append()
    }

    /// The log file and the index files written since they were last trimmed, for an
    /// fsync that runs off the partition lock (Kafka flushes a segment's indexes with its
    /// log).
    pub fn flush_handles(&self) -> Vec<Arc<File>> {
        let mut v = vec![self.file.clone()];
        v.extend(self.offset_index.file.handle());
        v.extend(self.time_index.file.handle());
        v
    }

    /// Releases a closed segment's index maps and descriptors (Kafka's `LazyIndex`): they
    /// are mapped again by the first lookup. Call after `on_become_inactive` and after
    /// `flush_handles` has been taken.
    pub fn unload_indexes(&mut self) {
        self.offset_index.file().unload();
        self.time_index.file().unload();
    }

    /// fdatasync of the log file. Indexes need no sync: after an unclean stop every segment
    /// past the recovery point, and any index that is not trimmed and sane, is rebuilt.
    pub fn flush(&self) -> io::Result<()> {
        sync_data(&self.file)
    }

    pub fn delete(self) -> io::Result<()> {
        let log = self.dir.join(file_name(self.base_offset, "log"));
        self.offset_index.into_file().delete()?;
        self.time_index.into_file().delete()?;
        std::fs::remove_file(log)
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    /// Whether each index (offset, time) is open and mapped now.
    pub fn indexes_mapped(&self) -> (bool, bool) {
        (self.offset_index.file.is_mapped(), self.time_index.file.is_mapped())
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    /// Largest timestamp for retention: the records' largest, else the file's mtime.
    pub fn largest_timestamp_for_retention(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(self.created_ms)
    }
}

pub fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Reads a batch header at `pos` in a file of `size` bytes.
pub fn read_header(file: &File, pos: u64, size: u64) -> io::Result<Option<BatchHeader>> {
    if pos + HEADER_LEN as u64 > size {
        return Ok(None);
    }
    let mut buf = [0u8; HEADER_LEN];
    file.read_exact_at(&mut buf, pos)?;
    Ok(BatchHeader::parse(&buf).ok())
}

/// `pwritev` until every slice is written (short writes happen with large vectors).
fn write_all_at(file: &File, mut data: &mut [IoSlice<'_>], mut at: u64) -> io::Result<()> {
    // Linux accepts at most IOV_MAX (1024) slices per call.
    const IOV_MAX: usize = 1024;
    IoSlice::advance_slices(&mut data, 0);
    while !data.is_empty() {
        let n = data.len().min(IOV_MAX);
        let written = nix::sys::uio::pwritev(file.as_fd(), &data[..n], at as i64).map_err(io::Error::from)?;
        if written == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "pwritev wrote nothing"));
        }
        at += written as u64;
        IoSlice::advance_slices(&mut data, written);
    }
    Ok(())
}
