//! Walking a segment file after an unclean stop: which bytes hold sound batches, which do
//! not, and what to do about the ones that do not.
//!
//! Kafka truncates a segment at its first bad batch and deletes every later segment. That
//! is right for a torn tail (a write the crash cut short) and wrong for a flipped bit in
//! the middle of the log: everything acknowledged after it would be destroyed and its
//! offsets handed out again. Here a bad stretch is a *hole*: the walk resynchronises on the
//! next batch whose header, offsets and CRC are sound, and
//! - a hole that runs to the end of the file is truncated (nothing readable is lost);
//! - a hole followed by sound batches is cut out: the sound batches are copied into
//!   `<base>.log.salvaged`, fsynced, the original is kept as `<base>.log.corrupted-<ms>`
//!   for the operator, and the salvaged file is renamed over `<base>.log`. The offsets in
//!   the hole become a gap, as compaction leaves them; none is ever reused.
//!
//! A crash during a salvage leaves either the original `<base>.log` (and a `.salvaged`
//! file the next open removes) or the salvaged one: the rename is the commit point.

use super::batch::{self, BatchHeader, HEADER_LEN};
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const SALVAGED: &str = "log.salvaged";
pub const CORRUPTED: &str = "log.corrupted";

/// What a walk over a segment file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Unreadable byte ranges, in file order.
    pub holes: Vec<Range<u64>>,
    /// The offset after the last sound batch (the segment's base when there is none).
    pub next_offset: i64,
}

impl Walk {
    /// Whether sound batches follow a hole, so cutting it out (not truncating) keeps data.
    pub fn needs_salvage(&self, file_size: u64) -> bool {
        self.holes.iter().any(|h| h.end < file_size)
    }
}

/// Reads `len` bytes at `pos`, or fewer at the end of the file.
fn read_at(file: &File, pos: u64, len: usize, size: u64) -> io::Result<Vec<u8>> {
    let len = len.min(size.saturating_sub(pos) as usize);
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf)
}

/// The batch at `pos` when its header parses, it fits in the file, its offsets follow
/// `after` (and stay below `below`, the next segment's base) and its CRC matches.
fn sound_batch(file: &File, pos: u64, size: u64, after: i64, below: i64, buf: &mut Vec<u8>) -> io::Result<Option<BatchHeader>> {
    let head = read_at(file, pos, HEADER_LEN, size)?;
    let Ok(h) = BatchHeader::parse(&head) else { return Ok(None) };
    if pos + h.size as u64 > size || h.base_offset <= after || h.last_offset_delta < 0 || h.last_offset() >= below {
        return Ok(None);
    }
    buf.resize(h.size, 0);
    file.read_exact_at(buf, pos)?;
    Ok((batch::compute_crc(buf) == h.crc).then_some(h))
}

/// The first position after `from` where a sound batch starts, scanning byte by byte.
fn resync(file: &File, from: u64, size: u64, after: i64, below: i64, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
    const WINDOW: usize = 1 << 20;
    let mut start = from;
    while start + HEADER_LEN as u64 <= size {
        let window = read_at(file, start, WINDOW, size)?;
        let last = window.len().saturating_sub(HEADER_LEN);
        for i in 0..=last {
            // Cheap filters first: the magic byte, then the whole header, then the CRC.
            if window[i + batch::OFF_MAGIC] != 2 {
                continue;
            }
            let pos = start + i as u64;
            if sound_batch(file, pos, size, after, below, buf)?.is_some() {
                return Ok(Some(pos));
            }
        }
        start += last as u64 + 1;
    }
    Ok(None)
}

/// Walks the file from its start; calls `visit(position, header)` for every sound batch.
/// `base_offset` is the segment's; `next_base` the following segment's, if any.
pub fn walk(
    file: &File,
    size: u64,
    base_offset: i64,
    next_base: Option<i64>,
    mut visit: impl FnMut(u64, &BatchHeader),
) -> io::Result<Walk> {
    let below = next_base.unwrap_or(i64::MAX);
    let mut out = Walk { holes: Vec::new(), next_offset: base_offset };
    let mut buf = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        if let Some(h) = sound_batch(file, pos, size, out.next_offset - 1, below, &mut buf)? {
            visit(pos, &h);
            out.next_offset = h.last_offset() + 1;
            pos += h.size as u64;
            continue;
        }
        let end = resync(file, pos + 1, size, out.next_offset - 1, below, &mut buf)?.unwrap_or(size);
        out.holes.push(pos..end);
        pos = end;
    }
    Ok(out)
}

/// Replaces `<dir>/<name>` by a copy without the holes; the original is kept beside it as
/// `<name>.corrupted-<now_ms>`. Returns the new file, opened for reading and writing.
pub fn salvage(dir: &Path, name: &str, file: &File, size: u64, holes: &[Range<u64>], now_ms: i64) -> io::Result<File> {
    let path = dir.join(name);
    let salvaged = dir.join(format!("{name}.{}", SALVAGED.trim_start_matches("log.")));
    {
        let out = OpenOptions::new().write(true).create(true).truncate(true).open(&salvaged)?;
        let mut written = 0u64;
        let mut kept_from = 0u64;
        let mut copy = |range: Range<u64>| -> io::Result<()> {
            let mut at = range.start;
            while at < range.end {
                let chunk = read_at(file, at, (range.end - at).min(1 << 20) as usize, range.end)?;
                out.write_all_at(&chunk, written)?;
                written += chunk.len() as u64;
                at += chunk.len() as u64;
            }
            Ok(())
        };
        for h in holes {
            copy(kept_from..h.start)?;
            kept_from = h.end;
        }
        copy(kept_from..size)?;
        out.sync_all()?;
    }
    std::fs::hard_link(&path, dir.join(format!("{name}.{}-{now_ms}", CORRUPTED.trim_start_matches("log."))))?;
    std::fs::rename(&salvaged, &path)?;
    File::open(dir)?.sync_all()?;
    OpenOptions::new().read(true).write(true).open(&path)
}

/// Removes `.salvaged` files a crash left behind (their originals are still in place).
pub fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(&format!(".{SALVAGED}")) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::test_support::batch;

    /// A file of `n` one-record batches with offsets 0..n; returns it and each batch's start.
    fn segment(dir: &Path, n: i64) -> (File, Vec<u64>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for i in 0..n {
            let mut b = batch(&[format!("value-{i}").as_bytes()], 1_000 + i);
            b[0..8].copy_from_slice(&i.to_be_bytes());
            starts.push(bytes.len() as u64);
            bytes.extend_from_slice(&b);
        }
        let path = dir.join("00000000000000000000.log");
        std::fs::write(&path, &bytes).unwrap();
        (OpenOptions::new().read(true).write(true).open(&path).unwrap(), starts)
    }

    fn flip(file: &File, pos: u64, mask: u8) {
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, pos).unwrap();
        file.write_all_at(&[b[0] ^ mask], pos).unwrap();
    }

    fn offsets(file: &File, next_base: Option<i64>) -> (Walk, Vec<i64>) {
        let size = file.metadata().unwrap().len();
        let mut seen = Vec::new();
        let w = walk(file, size, 0, next_base, |_, h| seen.push(h.base_offset)).unwrap();
        (w, seen)
    }

    #[test]
    fn a_flipped_payload_byte_is_a_hole_of_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (file, starts) = segment(dir.path(), 20);
        flip(&file, starts[7] + HEADER_LEN as u64 + 3, 0x01);
        let (w, seen) = offsets(&file, None);
        assert_eq!(w.holes, vec![starts[7]..starts[8]]);
        assert_eq!(seen, (0..20).filter(|&o| o != 7).collect::<Vec<_>>());
        assert_eq!(w.next_offset, 20);
        assert!(w.needs_salvage(file.metadata().unwrap().len()));
    }

    #[test]
    fn a_flipped_length_resyncs_on_the_next_sound_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (file, starts) = segment(dir.path(), 20);
        flip(&file, starts[3] + batch::OFF_LENGTH as u64 + 3, 0x40);
        let (w, seen) = offsets(&file, None);
        assert_eq!(w.holes, vec![starts[3]..starts[4]]);
        assert_eq!(seen.len(), 19);
    }

    #[test]
    fn a_torn_tail_is_a_hole_to_the_end_and_needs_no_salvage() {
        let dir = tempfile::tempdir().unwrap();
        let (file, starts) = segment(dir.path(), 5);
        let size = file.metadata().unwrap().len();
        file.set_len(size - 4).unwrap();
        let (w, seen) = offsets(&file, None);
        assert_eq!(w.holes, vec![starts[4]..size - 4]);
        assert_eq!((seen.len(), w.next_offset), (4, 4));
        assert!(!w.needs_salvage(size - 4));
    }

    #[test]
    fn batches_past_the_next_segment_base_are_not_sound() {
        let dir = tempfile::tempdir().unwrap();
        let (file, starts) = segment(dir.path(), 10);
        let (w, seen) = offsets(&file, Some(6));
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(w.holes, vec![starts[6]..file.metadata().unwrap().len()]);
    }

    #[test]
    fn salvage_keeps_every_sound_batch_and_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let (file, starts) = segment(dir.path(), 12);
        flip(&file, starts[5] + 30, 0x80);
        let size = file.metadata().unwrap().len();
        let (w, _) = offsets(&file, None);
        let fixed = salvage(dir.path(), "00000000000000000000.log", &file, size, &w.holes, 42).unwrap();
        let (again, seen) = offsets(&fixed, None);
        assert!(again.holes.is_empty());
        assert_eq!(seen, (0..12).filter(|&o| o != 5).collect::<Vec<_>>());
        let kept = std::fs::metadata(dir.path().join("00000000000000000000.log.corrupted-42")).unwrap().len();
        assert_eq!(kept, size, "the original bytes are kept for the operator");
        std::fs::write(dir.path().join("00000000000000000000.log.salvaged"), b"x").unwrap();
        remove_leftovers(dir.path()).unwrap();
        assert!(!dir.path().join("00000000000000000000.log.salvaged").exists());
    }
}
