//! The log's side of compaction: which segments the cleaner may read, and swapping a
//! cleaned segment in for the segments it replaces, crash-safely, the way Kafka does:
//!
//! 1. the cleaner writes `<base>.log.cleaned` and fsyncs it (a crash here: the file is
//!    deleted at the next open, the old segments are untouched);
//! 2. `.cleaned` is renamed to `<base>.log.swap` — the commit point;
//! 3. the replaced segments' files are renamed to `*.deleted`;
//! 4. `.swap` is renamed to `<base>.log` and its indexes are rebuilt;
//! 5. the `*.deleted` files are removed.
//!
//! At open, a `.swap` file means a crash after step 2: every segment whose base offset
//! lies inside the swap file's offset range is removed and the swap is completed; leftover
//! `.deleted` and `.cleaned` files are removed. Either the old segments or the cleaned one
//! are in the log afterwards, never neither.

use super::{segment, Log, LogSegment};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub const CLEANED: &str = "log.cleaned";
pub const SWAP: &str = "log.swap";

/// A closed segment as the cleaner reads it, without holding the log lock.
#[derive(Clone, Debug)]
pub struct SegmentView {
    pub base: i64,
    pub file: Arc<File>,
    pub size: u64,
    pub next_offset: i64,
    pub largest_timestamp: i64,
}

#[cfg(test)]
thread_local! {
    /// Test hook: the swap step after which this thread stops as a crash would (0: none).
    pub static CRASH_AFTER_STEP: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

fn crash_point(_step: u8) -> io::Result<()> {
    #[cfg(test)]
    if CRASH_AFTER_STEP.with(|c| c.get()) == _step {
        return Err(io::Error::other(format!("injected crash after swap step {_step}")));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Log {
    /// The offset the cleaner stays below: the active segment's base, the last stable
    /// offset (open transactions), and the first segment holding records younger than
    /// `min.compaction.lag.ms`.
    pub fn first_uncleanable_offset(&self, now_ms: i64) -> i64 {
        let active = self.active().base_offset;
        let mut limit = active.min(self.last_stable_offset());
        if self.config.min_compaction_lag_ms > 0 {
            if let Some(young) = self
                .segments
                .values()
                .find(|s| s.max_timestamp() >= 0 && now_ms - s.max_timestamp() < self.config.min_compaction_lag_ms)
            {
                limit = limit.min(young.base_offset);
            }
        }
        limit
    }

    /// The closed segments wholly below `upto`, oldest first.
    pub fn segments_below(&self, upto: i64) -> Vec<SegmentView> {
        let active = self.active().base_offset;
        self.segments
            .values()
            .filter(|s| s.base_offset != active && s.next_offset() <= upto)
            .map(|s| SegmentView {
                base: s.base_offset,
                file: s.file().clone(),
                size: s.size(),
                next_offset: s.next_offset(),
                largest_timestamp: s.largest_timestamp_for_retention(),
            })
            .collect()
    }

    /// Swaps `<bases[0]>.log.cleaned` in for the segments `bases` (consecutive, closed).
    /// Returns false, deleting the cleaned file, if those segments changed meanwhile
    /// (retention or DeleteRecords removed some).
    pub fn swap_in_cleaned(&mut self, bases: &[i64], now_ms: i64) -> io::Result<bool> {
        let first = bases[0];
        let cleaned = self.dir.join(segment::file_name(first, CLEANED));
        let active = self.active().base_offset;
        let present = bases.iter().all(|b| self.segments.contains_key(b) && *b != active)
            && self.segments.range(first..=*bases.last().unwrap()).count() == bases.len();
        if !present {
            let _ = std::fs::remove_file(&cleaned);
            return Ok(false);
        }
        let swap = self.dir.join(segment::file_name(first, SWAP));
        std::fs::rename(&cleaned, &swap)?;
        sync_dir(&self.dir)?;
        crash_point(2)?;
        let mut doomed = Vec::new();
        for b in bases {
            let old = self.segments.remove(b).expect("checked above");
            for ext in ["log", "index", "timeindex"] {
                let from = self.dir.join(segment::file_name(*b, ext));
                let to = self.dir.join(format!("{}.deleted", segment::file_name(*b, ext)));
                match std::fs::rename(&from, &to) {
                    Ok(()) => doomed.push(to),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            drop(old); // open files and maps stay valid for readers holding them
        }
        crash_point(3)?;
        std::fs::rename(&swap, self.dir.join(segment::file_name(first, "log")))?;
        sync_dir(&self.dir)?;
        crash_point(4)?;
        let next_base = self.segments.range(first + 1..).next().map(|(b, _)| *b);
        let (mut seg, _) = LogSegment::open(
            &self.dir,
            first,
            self.config.index_interval_bytes,
            self.config.segment_index_bytes,
            false,
            next_base,
            now_ms,
        )?;
        seg.on_become_inactive()?;
        seg.unload_indexes();
        self.segments.insert(first, seg);
        for path in doomed {
            let _ = std::fs::remove_file(path);
        }
        // The log start never moves back; a cleaned-away first batch leaves it where it was.
        debug_assert!(self.segments.keys().next().is_some_and(|b| *b <= self.log_start_offset.max(first)));
        Ok(true)
    }
}

/// Finishes swaps a crash interrupted (see the module comment). Runs before the
/// directory's segments are listed.
pub(super) fn complete_interrupted_swaps(dir: &Path) -> io::Result<()> {
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(&format!(".{SWAP}")).and_then(|b| b.parse::<i64>().ok()) {
            swaps.push(base);
        } else if name.ends_with(".deleted") || name.ends_with(&format!(".{CLEANED}")) {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    let any = !swaps.is_empty();
    for base in swaps {
        let swap = dir.join(segment::file_name(base, SWAP));
        let file = File::open(&swap)?;
        let size = file.metadata()?.len();
        let (mut pos, mut end) = (0u64, base);
        while let Some(h) = segment::read_header(&file, pos, size)? {
            end = h.last_offset() + 1;
            pos += h.size as u64;
        }
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(b) = name.strip_suffix(".log").and_then(|b| b.parse::<i64>().ok()) else { continue };
            if b >= base && (b < end || b == base) {
                for ext in ["log", "index", "timeindex"] {
                    let _ = std::fs::remove_file(dir.join(segment::file_name(b, ext)));
                }
            }
        }
        std::fs::rename(&swap, dir.join(segment::file_name(base, "log")))?;
        tracing::info!(dir = %dir.display(), base, "completed a segment swap interrupted by the last stop");
    }
    if any {
        sync_dir(dir)?;
    }
    Ok(())
}
