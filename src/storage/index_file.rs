//! A memory-mapped file of fixed-size, sorted entries: the common ground of Kafka's
//! `OffsetIndex` and `TimeIndex`.
//!
//! The active segment's index is preallocated to its maximum size (`segment.index.bytes`)
//! and written through the map; when the segment rolls or the broker shuts down cleanly
//! the file is trimmed to its entries, which is how a later start tells a trustworthy
//! index (trimmed) from one that must be rebuilt (still preallocated).

use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct IndexFile {
    path: PathBuf,
    /// Shared with pending background fsyncs (`IndexFile::handle`).
    file: Arc<File>,
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    capacity: usize,
}

impl IndexFile {
    /// Creates an empty index (truncating any file there), preallocated to `max_bytes`.
    pub fn create(path: &Path, entry_size: usize, max_bytes: u64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        let mut idx = IndexFile {
            path: path.to_owned(),
            file: Arc::new(file),
            mmap: None,
            entry_size,
            entries: 0,
            capacity: (max_bytes as usize / entry_size).max(1),
        };
        idx.remap(true)?;
        Ok(idx)
    }

    /// Opens a trimmed index whose every entry is taken as written. Returns `None` when the
    /// file is missing or looks untrimmed/torn, so the caller rebuilds it from the log.
    pub fn open_trimmed(path: &Path, entry_size: usize, max_bytes: u64) -> io::Result<Option<Self>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        let capacity = (max_bytes as usize / entry_size).max(1);
        if len % entry_size != 0 || len / entry_size >= capacity {
            return Ok(None);
        }
        let mut idx = IndexFile { path: path.to_owned(), file: Arc::new(file), mmap: None, entry_size, entries: len / entry_size, capacity };
        idx.remap(false)?;
        Ok(Some(idx))
    }

    /// Maps the file; `preallocate` grows it to capacity first (for appending).
    fn remap(&mut self, preallocate: bool) -> io::Result<()> {
        let len = if preallocate { self.capacity * self.entry_size } else { self.entries * self.entry_size };
        // Resized first: if that fails the old map still matches the file.
        self.file.set_len(len as u64)?;
        self.mmap = None;
        if len > 0 {
            // SAFETY: the file is owned by this struct and only written through this map while
            // the partition lock is held; no other process is expected to change it.
            let map = unsafe { MmapMut::map_mut(&self.file)? };
            // Index pages are touched one at a time (appends, binary searches): without
            // this, each first touch of the sparse preallocated file faults in a whole
            // readahead window the kernel must zero — with many partitions, most of the
            // produce path's CPU went there.
            let _ = map.advise(memmap2::Advice::Random);
            self.mmap = Some(map);
        }
        Ok(())
    }

    /// Grows a trimmed index back to capacity so the active segment can append to it.
    pub fn reopen_for_append(&mut self) -> io::Result<()> {
        self.remap(true)
    }

    /// Shrinks the file to its entries (roll, clean shutdown).
    pub fn trim(&mut self) -> io::Result<()> {
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        self.remap(false)
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    /// The open file, for an fsync that runs without the partition lock.
    pub fn handle(&self) -> Arc<File> {
        self.file.clone()
    }

    /// No room for another entry: at capacity, or trimmed (mapped only up to its entries,
    /// as after a roll). The segment then rolls before anything is appended to it.
    pub fn is_full(&self) -> bool {
        let mapped = self.mmap.as_ref().map_or(0, |m| m.len());
        self.entries >= self.capacity || mapped < (self.entries + 1) * self.entry_size
    }

    pub fn entry(&self, i: usize) -> &[u8] {
        assert!(i < self.entries, "index entry {i} out of {}", self.entries);
        let m = self.mmap.as_ref().expect("an index with entries is mapped");
        &m[i * self.entry_size..(i + 1) * self.entry_size]
    }

    pub fn last(&self) -> Option<&[u8]> {
        self.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends one entry; the caller keeps entries sorted and checks `is_full` first.
    pub fn append(&mut self, entry: &[u8]) {
        assert_eq!(entry.len(), self.entry_size);
        assert!(!self.is_full(), "append to a full index {}", self.path.display());
        let at = self.entries * self.entry_size;
        let m = self.mmap.as_mut().expect("an appendable index is mapped");
        m[at..at + self.entry_size].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Drops every entry at or after `keep` (truncation during recovery).
    pub fn truncate_entries(&mut self, keep: usize) {
        self.entries = self.entries.min(keep);
    }

    /// Index of the last entry whose key is ≤ `target`, by binary search.
    pub fn floor(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    pub fn delete(self) -> io::Result<()> {
        let path = self.path.clone();
        drop(self);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What distinguishes one sparse index from another: its entry size.
pub trait IndexKind {
    const ENTRY_SIZE: usize;
}

/// A segment's sparse index of kind `K` (`OffsetIndex`, `TimeIndex`): entries relative to
/// the segment's base offset, in an `IndexFile`.
pub struct SparseIndex<K> {
    pub(super) base_offset: i64,
    pub(super) file: IndexFile,
    kind: std::marker::PhantomData<K>,
}

impl<K: IndexKind> SparseIndex<K> {
    pub fn new(base_offset: i64, file: IndexFile) -> Self {
        SparseIndex { base_offset, file, kind: std::marker::PhantomData }
    }

    pub fn create(path: &Path, base_offset: i64, max_bytes: u64) -> io::Result<Self> {
        Ok(Self::new(base_offset, IndexFile::create(path, K::ENTRY_SIZE, max_bytes)?))
    }

    pub fn open_trimmed(path: &Path, base_offset: i64, max_bytes: u64) -> io::Result<Option<Self>> {
        Ok(IndexFile::open_trimmed(path, K::ENTRY_SIZE, max_bytes)?.map(|f| Self::new(base_offset, f)))
    }

    pub fn file(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub fn into_file(self) -> IndexFile {
        self.file
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }
}
