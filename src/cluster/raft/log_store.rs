//! The metadata log on disk, for openraft: `__cluster_metadata-0/` under the metadata log
//! directory, as in Kafka, holding
//!
//! - `quorum-state`: the vote (term, voted-for, committed flag), replaced atomically;
//! - `<first index, 20 digits>.raftlog` segments of entries, each `[len u32][crc32c u32][JSON]`,
//!   fsynced before an append is reported done;
//! - `purged`: the last entry removed by a snapshot (openraft must know it after a restart).
//!
//! A start re-reads the segments and cuts a torn last entry (an append that was never
//! reported done). Entries are also held in memory: the metadata log is small, and
//! snapshots purge it.

use super::TypeConfig;
use crate::storage::checkpoint::write_atomically;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type NodeId = u64;
const SEGMENT_BYTES: u64 = 8 << 20;
const HEADER: usize = 8;

fn io_err(e: io::Error) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

/// Where an entry lives: its segment's first index and its byte position there.
#[derive(Debug, Clone, Copy)]
struct Location {
    segment: u64,
    position: u64,
}

struct Inner {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    locations: BTreeMap<u64, Location>,
    /// Segments by first index; the last one takes appends.
    segments: BTreeMap<u64, u64>,
    active: Option<(u64, File)>,
    purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

/// The log store; clones share one log (the reader openraft asks for is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.raftlog")
}

fn encode(entry: &Entry<TypeConfig>) -> Vec<u8> {
    let body = serde_json::to_vec(entry).expect("metadata entries serialise");
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Entries with their byte positions.
type Positioned = Vec<(u64, Entry<TypeConfig>)>;

/// Reads a segment's entries; the byte length that holds whole, sound entries.
fn read_segment(path: &Path) -> io::Result<(Positioned, u64)> {
    let bytes = std::fs::read(path)?;
    let mut pos = 0usize;
    let mut out = Vec::new();
    while pos + HEADER <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let Some(body) = bytes.get(pos + HEADER..pos + HEADER + len) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(body) else { break };
        out.push((pos as u64, entry));
        pos += HEADER + len;
    }
    Ok((out, pos as u64))
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let vote = match std::fs::read(dir.join("quorum-state")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("quorum-state: {e}")))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let purged = match std::fs::read(dir.join("purged")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("purged: {e}")))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".raftlog")?.parse().ok())
            .collect();
        firsts.sort_unstable();
        let mut inner = Inner {
            dir: dir.to_owned(),
            entries: BTreeMap::new(),
            locations: BTreeMap::new(),
            segments: BTreeMap::new(),
            active: None,
            purged,
            vote,
        };
        for (i, first) in firsts.iter().enumerate() {
            let path = dir.join(segment_name(*first));
            let (entries, valid) = read_segment(&path)?;
            let len = std::fs::metadata(&path)?.len();
            if valid < len {
                if i + 1 < firsts.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is damaged at byte {valid} and later segments exist; restore the metadata log from another controller", path.display()),
                    ));
                }
                tracing::warn!(file = %path.display(), at = valid, "cutting a torn entry off the metadata log");
                OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
            }
            for (position, e) in entries {
                let index = e.log_id.index;
                if purged.is_some_and(|p: LogId<NodeId>| index <= p.index) {
                    continue;
                }
                inner.locations.insert(index, Location { segment: *first, position });
                inner.entries.insert(index, e);
            }
            inner.segments.insert(*first, valid);
        }
        if let Some((&first, _)) = inner.segments.iter().next_back() {
            let f = OpenOptions::new().append(true).open(dir.join(segment_name(first)))?;
            inner.active = Some((first, f));
        }
        Ok(LogStore { inner: Arc::new(Mutex::new(inner)) })
    }
}

impl Inner {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries.values().next_back().map(|e| e.log_id).or(self.purged)
    }

    fn append_one(&mut self, entry: Entry<TypeConfig>) -> io::Result<()> {
        let index = entry.log_id.index;
        let bytes = encode(&entry);
        let roll = match &self.active {
            None => true,
            Some((first, _)) => self.segments[first] + bytes.len() as u64 > SEGMENT_BYTES && self.segments[first] > 0,
        };
        if roll {
            let f = OpenOptions::new().create(true).append(true).open(self.dir.join(segment_name(index)))?;
            File::open(&self.dir)?.sync_all()?;
            self.segments.insert(index, 0);
            self.active = Some((index, f));
        }
        let (first, file) = self.active.as_mut().expect("an active segment");
        let position = self.segments[first];
        file.write_all(&bytes)?;
        *self.segments.get_mut(first).unwrap() += bytes.len() as u64;
        self.locations.insert(index, Location { segment: *first, position });
        self.entries.insert(index, entry);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        match &self.active {
            Some((_, f)) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Removes entries at `from` and after (conflicting entries a new leader overwrites).
    fn truncate(&mut self, from: u64) -> io::Result<()> {
        let Some(loc) = self.locations.get(&from).copied() else {
            return Ok(());
        };
        let later: Vec<u64> = self.segments.range(loc.segment + 1..).map(|(f, _)| *f).collect();
        for f in later {
            std::fs::remove_file(self.dir.join(segment_name(f)))?;
            self.segments.remove(&f);
        }
        let path = self.dir.join(segment_name(loc.segment));
        let f = OpenOptions::new().write(true).open(&path)?;
        f.set_len(loc.position)?;
        f.sync_all()?;
        self.segments.insert(loc.segment, loc.position);
        self.active = Some((loc.segment, OpenOptions::new().append(true).open(&path)?));
        self.entries.split_off(&from);
        self.locations.split_off(&from);
        File::open(&self.dir)?.sync_all()
    }

    /// Drops entries up to `log_id` (they are in a snapshot) and whole segments holding
    /// only such entries.
    fn purge(&mut self, log_id: LogId<NodeId>) -> io::Result<()> {
        write_atomically(&self.dir.join("purged"), &serde_json::to_vec(&Some(log_id)).unwrap())?;
        self.purged = Some(log_id);
        let keep = self.entries.split_off(&(log_id.index + 1));
        self.entries = keep;
        let keep = self.locations.split_off(&(log_id.index + 1));
        self.locations = keep;
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        for (i, f) in firsts.iter().enumerate() {
            let next_first = firsts.get(i + 1).copied();
            // A segment wholly at or below the purge point, and not the active one.
            if next_first.is_some_and(|n| n <= log_id.index + 1) {
                std::fs::remove_file(self.dir.join(segment_name(*f)))?;
                self.segments.remove(f);
            }
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.inner.lock().unwrap();
        Ok(LogState { last_purged_log_id: inner.purged, last_log_id: inner.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock().unwrap();
        write_atomically(&inner.dir.join("quorum-state"), &serde_json::to_vec(vote).unwrap())
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().unwrap().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let result = {
            let mut inner = self.inner.lock().unwrap();
            let mut r = Ok(());
            for e in entries {
                if let Err(err) = inner.append_one(e) {
                    r = Err(err);
                    break;
                }
            }
            r.and_then(|()| inner.sync())
        };
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the metadata log failed; check the metadata log directory");
                callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(io_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.lock().unwrap().truncate(log_id.index).map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.lock().unwrap().purge(log_id).map_err(io_err)
    }
}
