//! A memory-mapped file of fixed-size, sorted entries: the common ground of Kafka's
//! `OffsetIndex` and `TimeIndex`.
//!
//! The active segment's index is preallocated to its maximum size (`segment.index.bytes`)
//! and written through the map; when the segment rolls or the broker shuts down cleanly
//! the file is trimmed to its entries, which is how a later start tells a trustworthy
//! index (trimmed) from one that must be rebuilt (still preallocated).
//!
//! Like Kafka's `LazyIndex`, an index holds no file descriptor and no map until it is
//! used: a new segment's index is opened at its first entry, a closed segment's at its
//! first lookup, and a closed segment lets go of both once it is trimmed. A partition
//! nobody reads costs one descriptor (its active `.log`), not three plus two maps.
//! Invariant: while nothing is mapped, the file holds exactly `entries` entries (or does
//! not exist and `entries` is 0).

use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

struct Mapped {
    /// Shared with pending background fsyncs (`IndexFile::handle`).
    file: Arc<File>,
    mmap: Option<MmapMut>,
}

pub struct IndexFile {
    path: PathBuf,
    mapped: OnceLock<Mapped>,
    entry_size: usize,
    entries: usize,
    capacity: usize,
    /// Takes entries (an active segment's index); false once trimmed.
    appendable: bool,
}

impl IndexFile {
    /// Creates an empty index (truncating any file there) that will grow to `max_bytes`
    /// when its first entry is appended.
    pub fn create(path: &Path, entry_size: usize, max_bytes: u64) -> io::Result<Self> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(IndexFile {
            path: path.to_owned(),
            mapped: OnceLock::new(),
            entry_size,
            entries: 0,
            capacity: (max_bytes as usize / entry_size).max(1),
            appendable: true,
        })
    }

    /// Opens a trimmed index whose every entry is taken as written. Returns `None` when the
    /// file is missing or looks untrimmed/torn, so the caller rebuilds it from the log.
    pub fn open_trimmed(path: &Path, entry_size: usize, max_bytes: u64) -> io::Result<Option<Self>> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let capacity = (max_bytes as usize / entry_size).max(1);
        if len % entry_size != 0 || len / entry_size >= capacity {
            return Ok(None);
        }
        let idx = IndexFile {
            path: path.to_owned(),
            mapped: OnceLock::new(),
            entry_size,
            entries: len / entry_size,
            capacity,
            appendable: false,
        };
        Ok(Some(idx))
    }

    /// Opens and maps the file; `preallocate` grows it to capacity first (for appending).
    fn load(&self, preallocate: bool) -> io::Result<Mapped> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&self.path)?;
        let mut mapped = Mapped { file: Arc::new(file), mmap: None };
        self.remap(&mut mapped, preallocate)?;
        Ok(mapped)
    }

    fn remap(&self, mapped: &mut Mapped, preallocate: bool) -> io::Result<()> {
        let len = if preallocate { self.capacity * self.entry_size } else { self.entries * self.entry_size };
        // Resized first: if that fails the old map still matches the file.
        mapped.file.set_len(len as u64)?;
        mapped.mmap = None;
        if len > 0 {
            // SAFETY: the file is owned by this struct and only written through this map while
            // the partition lock is held; no other process is expected to change it.
            let map = unsafe { MmapMut::map_mut(&*mapped.file)? };
            // Index pages are touched one at a time (appends, binary searches): without
            // this, each first touch of the sparse preallocated file faults in a whole
            // readahead window the kernel must zero — with many partitions, most of the
            // produce path's CPU went there.
            let _ = map.advise(memmap2::Advice::Random);
            mapped.mmap = Some(map);
        }
        Ok(())
    }

    /// Maps the file for appends (preallocated to capacity), loading it if need be.
    fn map_for_append(&mut self) -> io::Result<()> {
        let mapped_len = self.mapped.get().and_then(|m| m.mmap.as_ref()).map_or(0, |m| m.len());
        if mapped_len == self.capacity * self.entry_size {
            return Ok(());
        }
        match self.mapped.take() {
            Some(mut m) => {
                let r = self.remap(&mut m, true);
                if r.is_ok() {
                    let _ = self.mapped.set(m);
                }
                r
            }
            None => {
                let m = self.load(true)?;
                let _ = self.mapped.set(m);
                Ok(())
            }
        }
    }

    /// Makes the index appendable again (the active segment after a restart, recovery).
    /// The file is grown and mapped at the first append.
    pub fn reopen_for_append(&mut self) -> io::Result<()> {
        self.appendable = true;
        Ok(())
    }

    /// Shrinks the file to its entries (roll, clean shutdown); it takes no more entries.
    pub fn trim(&mut self) -> io::Result<()> {
        self.appendable = false;
        let Some(mut m) = self.mapped.take() else {
            // Nothing mapped: the file already holds exactly its entries.
            return Ok(());
        };
        if let Some(map) = &m.mmap {
            map.flush()?;
        }
        let r = self.remap(&mut m, false);
        let _ = self.mapped.set(m);
        r
    }

    /// Lets go of the map and the file descriptor of a trimmed index; the next lookup
    /// maps it again. Pending fsyncs keep their own handle.
    pub fn unload(&mut self) {
        assert!(!self.appendable, "only a trimmed index is unloaded: {}", self.path.display());
        self.mapped.take();
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    /// The open file, for an fsync that runs without the partition lock; `None` when
    /// nothing is mapped (then nothing was written since the file was last trimmed).
    pub fn handle(&self) -> Option<Arc<File>> {
        self.mapped.get().map(|m| m.file.clone())
    }

    /// No room for another entry: at capacity, or trimmed (as after a roll). The segment
    /// then rolls before anything is appended to it.
    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity || !self.appendable
    }

    /// The mapped entries, mapping the file on first use. `None` when there are none or
    /// the file cannot be mapped now (out of descriptors or maps): lookups then start
    /// from the segment's first batch, which is slower but still right.
    fn view(&self) -> Option<&[u8]> {
        if self.entries == 0 {
            return None;
        }
        let m = match self.mapped.get() {
            Some(m) => m,
            None => match self.load(false) {
                Ok(m) => {
                    let _ = self.mapped.set(m);
                    self.mapped.get()?
                }
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), error = %e, "cannot map an index; scanning the segment instead (raise the open-file limit or vm.max_map_count)");
                    return None;
                }
            },
        };
        let bytes = self.entries * self.entry_size;
        m.mmap.as_ref().filter(|map| map.len() >= bytes).map(|map| &map[..bytes])
    }

    /// Entry `i`; `None` when the index cannot be mapped.
    pub fn entry(&self, i: usize) -> Option<&[u8]> {
        assert!(i < self.entries, "index entry {i} out of {}", self.entries);
        self.view().map(|v| &v[i * self.entry_size..(i + 1) * self.entry_size])
    }

    pub fn last(&self) -> Option<&[u8]> {
        self.entries.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Appends one entry; the caller keeps entries sorted and checks `is_full` first. When
    /// the file cannot be mapped (out of descriptors or maps) the entry is left out — the
    /// index is sparse — and the index takes no more, so the segment rolls at the next
    /// append.
    pub fn append(&mut self, entry: &[u8]) {
        assert_eq!(entry.len(), self.entry_size);
        assert!(!self.is_full(), "append to a full index {}", self.path.display());
        if let Err(e) = self.map_for_append() {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot map an index for appends; the segment will roll (raise the open-file limit or vm.max_map_count)");
            self.appendable = false;
            return;
        }
        let at = self.entries * self.entry_size;
        let m = self.mapped.get_mut().and_then(|m| m.mmap.as_mut()).expect("an appendable index is mapped");
        m[at..at + self.entry_size].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Drops every entry at or after `keep` (recovery, before the index is rebuilt). The
    /// file is mapped for appends first so that the unmapped-file invariant holds.
    pub fn truncate_entries(&mut self, keep: usize) -> io::Result<()> {
        if keep < self.entries {
            self.map_for_append()?;
            self.appendable = true;
            self.entries = keep;
        }
        Ok(())
    }

    /// Index of the last entry whose key is ≤ `target`, by binary search.
    pub fn floor(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        let view = self.view()?;
        let entry = |i: usize| &view[i * self.entry_size..(i + 1) * self.entry_size];
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(entry(mid)) <= target {
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

    /// Whether the file is open and mapped now.
    pub fn is_mapped(&self) -> bool {
        self.mapped.get().is_some()
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
