//! Kafka's `Log` (UnifiedLog on one node): the ordered segments of one partition.
//!
//! It assigns offsets, appends stamped batches to the active segment, rolls segments,
//! answers reads with file ranges, looks offsets up by timestamp, applies retention and
//! knows its recovery point (every offset below it has been fsynced).

use super::leader_epoch_cache::LeaderEpochFileCache;
use super::batch::{self, BatchHeader, HEADER_LEN};
use super::producer_state::{ProducerCheck, ProducerError, ProducerStateManager};
use super::segment::{self, BatchMeta, LogSegment};
use crate::config::{LogConfig, TimestampType};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "log_swap.rs"]
pub mod swap;

/// A byte range of a segment file to be sent as it is.
#[derive(Clone, Debug)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
}

#[derive(Debug)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into the batches, or -1 for CreateTime topics.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// A retried batch already in the log: nothing was written.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    /// The batch chain a read walked is broken (`segment::Corruption`).
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<segment::Corruption>()) {
            Some(c) => ReadError::Corrupt(c.to_string()),
            None => ReadError::Io(e),
        }
    }
}

/// How a log is opened at start-up.
pub struct LoadOptions {
    /// The broker stopped cleanly: indexes are trusted and nothing is re-validated.
    pub clean_shutdown: bool,
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub now_ms: i64,
}

impl LoadOptions {
    /// A log opened in a new, empty directory: nothing to recover.
    pub fn fresh(now_ms: i64) -> Self {
        LoadOptions { clean_shutdown: true, recovery_point: 0, log_start_offset: 0, now_ms }
    }
}

pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    recovery_point: i64,
    /// Files of rolled segments not yet fsynced.
    unflushed_files: Vec<Arc<File>>,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// Idempotent producers' recent batches (Kafka's ProducerStateManager).
    producers: ProducerStateManager,
    /// Where each leader epoch's batches begin (`leader-epoch-checkpoint`).
    epochs: LeaderEpochFileCache,
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("{0}")]
    Invalid(&'static str),
}

fn parse_segment_name(name: &str) -> Option<i64> {
    let base = name.strip_suffix(".log")?;
    (base.len() == 20).then(|| base.parse().ok()).flatten()
}

impl Log {
    /// Opens the partition directory, creating it (and a first segment) when empty, and
    /// recovers segments that may hold unflushed data.
    pub fn open(dir: &Path, config: LogConfig, opts: LoadOptions) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        swap::complete_interrupted_swaps(dir)?;
        super::segment_recovery::remove_leftovers(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(base) = parse_segment_name(&name.to_string_lossy()) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut log = Log {
            dir: dir.to_owned(),
            config,
            segments: BTreeMap::new(),
            log_start_offset: 0,
            recovery_point: opts.recovery_point,
            unflushed_files: Vec::new(),
            unflushed_messages: 0,
            last_flush_ms: opts.now_ms,
            producers: ProducerStateManager::default(),
            epochs: LeaderEpochFileCache::empty(dir),
        };
        // With an unclean stop, recover from the segment that holds the recovery point on.
        let first_unflushed = if opts.clean_shutdown {
            i64::MAX
        } else {
            bases.iter().rev().find(|&&b| b <= opts.recovery_point).copied().unwrap_or(i64::MIN)
        };
        // A damaged segment never takes later ones with it: recovery truncates only bytes
        // that nothing readable follows and cuts corrupt stretches out of the middle
        // (`segment_recovery`), so every later segment, and every offset, stays.
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let trust = base < first_unflushed;
            let (mut seg, recovered) = LogSegment::open(
                dir,
                base,
                log.config.index_interval_bytes,
                log.config.segment_index_bytes,
                trust,
                next_base,
                opts.now_ms,
            )?;
            if let Some(r) = recovered {
                // A recovered segment gets trimmed indexes like any closed one; the active
                // one is reopened for appends below.
                seg.on_become_inactive()?;
                if r.truncated_bytes > 0 || r.salvaged_bytes > 0 {
                    tracing::warn!(
                        dir = %dir.display(), base, truncated = r.truncated_bytes, cut_out = r.salvaged_bytes,
                        "removed unreadable bytes after an unclean shutdown"
                    );
                }
                // Recovered data is not known to be on disk: fsynced before the recovery
                // point may pass it.
                if next_base.is_some() {
                    log.unflushed_files.extend(seg.flush_handles());
                }
            }
            if next_base.is_some() {
                seg.unload_indexes();
            }
            log.segments.insert(base, seg);
        }
        // Segments past the active one are closed (trimmed); the last one takes appends.
        let last = log.segments.keys().next_back().copied();
        match last {
            Some(b) => log.segments.get_mut(&b).unwrap().reopen_for_append()?,
            None => {
                let base = opts.log_start_offset.max(0);
                let seg = LogSegment::create(dir, base, log.config.index_interval_bytes, log.config.segment_index_bytes, opts.now_ms)?;
                log.segments.insert(base, seg);
            }
        }
        let first_base = *log.segments.keys().next().unwrap();
        log.log_start_offset = opts.log_start_offset.max(first_base).min(log.next_offset());
        // Recovered data is not known to be on disk: the recovery point stays where it was,
        // so a second unclean stop re-validates the same segments.
        log.recovery_point = log.recovery_point.min(log.next_offset());
        log.load_producer_state()?;
        log.load_leader_epochs()?;
        Ok(log)
    }

    /// The checkpoint as written, trimmed to the log as recovered; rebuilt from the
    /// batches' stamped epochs when it is missing (a log from before the checkpoint) or
    /// damaged.
    fn load_leader_epochs(&mut self) -> io::Result<()> {
        self.epochs = match LeaderEpochFileCache::load(&self.dir)? {
            Some(c) => c,
            None => {
                let mut c = LeaderEpochFileCache::empty(&self.dir);
                for seg in self.segments.values() {
                    let mut pos = 0;
                    while let Some(h) = seg.header_at(pos)? {
                        c.assign_quietly(h.partition_leader_epoch, h.base_offset);
                        pos += h.size as u64;
                    }
                }
                c.persist()?;
                c
            }
        };
        self.epochs.truncate_from_end(self.next_offset())?;
        self.epochs.truncate_from_start(self.log_start_offset)?;
        // Kafka's `maybeAssignEpochStartOffset` as a leader takes over: its epoch starts at
        // the log end, so even an empty log answers for it. (Every partition has one
        // leader epoch until replication moves leadership.)
        if self.epochs.latest_epoch().is_none_or(|e| e < crate::LEADER_EPOCH) {
            self.epochs.assign(crate::LEADER_EPOCH, self.next_offset())?;
        }
        Ok(())
    }

    /// Kafka's `endOffsetForEpoch`: the epoch at or below `epoch` that wrote here and the
    /// offset where it ended (`leader_epoch_cache::end_offset_for`).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.next_offset())
    }

    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.epochs.entries()
    }

    /// The newest producer snapshot at or below the log end, then every batch after it.
    fn load_producer_state(&mut self) -> io::Result<()> {
        let end = self.next_offset();
        let (state, at) = ProducerStateManager::load(&self.dir, end)?;
        self.producers = state;
        let from = at.unwrap_or(i64::MIN);
        if from >= end {
            return Ok(());
        }
        let mut replayed = 0usize;
        for seg in self.segments.values().filter(|s| s.next_offset() > from) {
            let mut pos = 0;
            while let Some(h) = seg.header_at(pos)? {
                if h.last_offset() >= from && h.has_producer_id() {
                    if h.is_control() {
                        let mut body = [0u8; 24];
                        let n = body.len().min(h.size - HEADER_LEN);
                        seg.file().read_exact_at(&mut body[..n], pos + HEADER_LEN as u64)?;
                        if let Some(kind) = batch::control_type(&body[..n]) {
                            self.producers.complete_txn(h.producer_id, h.producer_epoch, h.base_offset, kind == batch::CONTROL_COMMIT);
                        }
                    } else {
                        self.producers.update(&h, h.base_offset, h.max_timestamp);
                    }
                    replayed += 1;
                }
                pos += h.size as u64;
            }
        }
        if replayed > 0 {
            tracing::debug!(dir = %self.dir.display(), from, replayed, "rebuilt producer state from the log");
        }
        Ok(())
    }

    /// Writes a transaction marker (commit or abort) for `producer_id`; returns its offset.
    pub fn append_marker(&mut self, producer_id: i64, producer_epoch: i16, commit: bool, coordinator_epoch: i32, now_ms: i64) -> io::Result<i64> {
        let b = batch::control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now_ms);
        let h = BatchHeader::parse(&b).expect("a marker we built parses");
        let offset = match self.append(&[(&b, h)], now_ms) {
            Ok(info) => info.first_offset,
            Err(AppendError::Io(e)) => return Err(e),
            Err(e) => unreachable!("markers skip producer checks: {e}"),
        };
        self.producers.complete_txn(producer_id, producer_epoch, offset, commit);
        Ok(offset)
    }

    /// The last stable offset: below it no transaction is open (the log end when none is).
    pub fn last_stable_offset(&self) -> i64 {
        self.producers.first_unstable_offset().unwrap_or(i64::MAX).min(self.next_offset())
    }

    /// Aborted transactions with records in `[from, to)`, for read_committed fetches.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<super::producer_state::AbortedTxn> {
        self.producers.aborted_between(from, to)
    }

    /// Idempotent producers' state (for DescribeProducers and tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn active(&self) -> &LogSegment {
        self.segments.values().next_back().expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments.values_mut().next_back().expect("a log always has an active segment")
    }

    /// The log end offset: the offset the next record gets.
    pub fn next_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends validated batches: stamps each with its base offset and leader epoch (and,
    /// for LogAppendTime topics, the broker time and a new CRC) and writes them as one
    /// vectored write. Record bytes are never copied.
    /// Batches of idempotent producers are checked first: a retried batch is answered with
    /// its original offsets (`duplicate`) and nothing is written.
    pub fn append(&mut self, batches: &[(&[u8], BatchHeader)], now_ms: i64) -> Result<AppendInfo, AppendError> {
        assert!(!batches.is_empty());
        if batches.iter().any(|(_, h)| h.has_producer_id() && !h.is_control()) {
            if batches.len() > 1 {
                return Err(AppendError::Invalid("an idempotent producer sends one batch per partition per request"));
            }
            if let ProducerCheck::Duplicate { first_offset, last_offset } = self.producers.check(&batches[0].1)? {
                return Ok(AppendInfo {
                    first_offset,
                    last_offset,
                    log_append_time: -1,
                    log_start_offset: self.log_start_offset,
                    duplicate: true,
                });
            }
        }
        let first_offset = self.next_offset();
        let append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        // Per batch: offset(8) epoch(4) crc(4) attributes(2) maxTimestamp(8), and whether
        // the header's max timestamp is rewritten (LogAppendTime, or a producer's header
        // that disagrees with its records, which Kafka's LogValidator also corrects).
        let mut stamps: Vec<([u8; 26], bool)> = Vec::with_capacity(batches.len());
        let mut metas = Vec::with_capacity(batches.len());
        let mut next = first_offset;
        for (bytes, h) in batches {
            let mut s = [0u8; 26];
            s[0..8].copy_from_slice(&next.to_be_bytes());
            s[8..12].copy_from_slice(&crate::LEADER_EPOCH.to_be_bytes());
            let mut max_ts = h.max_timestamp;
            let sent_max = i64::from_be_bytes(bytes[batch::OFF_MAX_TIMESTAMP..batch::OFF_MAX_TIMESTAMP + 8].try_into().unwrap());
            let rewrite = append_time || sent_max != h.max_timestamp;
            if rewrite {
                let attrs = if append_time { h.attributes | batch::ATTR_TIMESTAMP_TYPE } else { h.attributes };
                max_ts = if append_time { now_ms } else { h.max_timestamp };
                s[16..18].copy_from_slice(&attrs.to_be_bytes());
                s[18..26].copy_from_slice(&max_ts.to_be_bytes());
                let mut crc = crc32c::crc32c(&s[16..18]);
                crc = crc32c::crc32c_append(crc, &bytes[batch::OFF_LAST_OFFSET_DELTA..batch::OFF_MAX_TIMESTAMP]);
                crc = crc32c::crc32c_append(crc, &s[18..26]);
                crc = crc32c::crc32c_append(crc, &bytes[batch::OFF_PRODUCER_ID..]);
                s[12..16].copy_from_slice(&crc.to_be_bytes());
            }
            let last = next + h.last_offset_delta as i64;
            metas.push(BatchMeta { last_offset: last, max_timestamp: max_ts, size: bytes.len() });
            stamps.push((s, rewrite));
            next = last + 1;
        }
        let mut iov = Vec::with_capacity(batches.len() * 9);
        for ((bytes, _), (s, rewrite)) in batches.iter().zip(&stamps) {
            iov.push(IoSlice::new(&s[0..8]));
            iov.push(IoSlice::new(&bytes[batch::OFF_LENGTH..batch::OFF_LEADER_EPOCH]));
            iov.push(IoSlice::new(&s[8..12]));
            if *rewrite {
                iov.push(IoSlice::new(&bytes[batch::OFF_MAGIC..batch::OFF_CRC]));
                iov.push(IoSlice::new(&s[12..16]));
                iov.push(IoSlice::new(&s[16..18]));
                iov.push(IoSlice::new(&bytes[batch::OFF_LAST_OFFSET_DELTA..batch::OFF_MAX_TIMESTAMP]));
                iov.push(IoSlice::new(&s[18..26]));
                iov.push(IoSlice::new(&bytes[batch::OFF_PRODUCER_ID..]));
            } else {
                iov.push(IoSlice::new(&bytes[batch::OFF_MAGIC..]));
            }
        }
        let total: u64 = metas.iter().map(|m| m.size as u64).sum();
        let last_offset = next - 1;
        if self.active().should_roll(total, last_offset, self.config.segment_bytes, self.config.segment_ms, now_ms) {
            self.roll(now_ms)?;
        }
        // The epoch's start is on disk before any of its batches can be.
        self.epochs.assign(crate::LEADER_EPOCH, first_offset)?;
        self.active_mut().append(&metas, &mut iov)?;
        self.unflushed_messages += last_offset - first_offset + 1;
        let mut base = first_offset;
        for ((_, h), m) in batches.iter().zip(&metas) {
            self.producers.update(h, base, m.max_timestamp);
            base = m.last_offset + 1;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset,
            log_append_time: if append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// Indexes of the active segment not open yet: each takes a descriptor and a map
    /// once written (`resource_budget`).
    pub fn unopened_active_indexes(&self) -> u64 {
        let (o, t) = self.active().indexes_mapped();
        u64::from(!o) + u64::from(!t)
    }

    /// Starts a new active segment at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> io::Result<()> {
        let next = self.next_offset();
        if self.active().base_offset == next {
            return Ok(()); // already empty
        }
        // The new segment first: when its files cannot be created (no space, too many open
        // files) nothing has changed, and the next append tries again.
        let seg = LogSegment::create(&self.dir, next, self.config.index_interval_bytes, self.config.segment_index_bytes, now_ms)?;
        let active = self.active_mut();
        // Trimmed, its indexes count as full: should this fail half-way, the segment is
        // never appended to again, and the next append rolls again.
        active.on_become_inactive()?;
        let handles = active.flush_handles();
        active.unload_indexes();
        self.unflushed_files.extend(handles);
        self.segments.insert(next, seg);
        // Make the new file's name durable with the directory.
        File::open(&self.dir)?.sync_all()?;
        // Even an empty producer state is snapshotted: without a snapshot a start would
        // read every batch header of the whole log to rebuild it (Kafka snapshots at every
        // roll too).
        self.producers.take_snapshot(&self.dir, next)?;
        Ok(())
    }

    /// Whether the flush policy (`flush.messages`, `flush.ms`) asks for an fsync now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        self.unflushed_messages > 0
            && (self.unflushed_messages >= self.config.flush_messages
                || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// What an fsync up to the current end must sync; hand it to `complete_flush` afterwards.
    pub fn begin_flush(&mut self) -> PendingFlush {
        let mut files = std::mem::take(&mut self.unflushed_files);
        files.push(self.active().file().clone());
        PendingFlush { files, upto: self.next_offset(), messages: self.unflushed_messages, full: true }
    }

    /// What an fsync of the rolled segments not yet flushed must sync (Kafka flushes a
    /// segment when it rolls, in the background, up to the new active segment's base), or
    /// `None` when there are none.
    pub fn begin_flush_rolled(&mut self) -> Option<PendingFlush> {
        if self.unflushed_files.is_empty() {
            return None;
        }
        let files = std::mem::take(&mut self.unflushed_files);
        Some(PendingFlush { files, upto: self.active().base_offset, messages: 0, full: false })
    }

    /// Whether rolled segments wait for their fsync.
    pub fn has_unflushed_rolled(&self) -> bool {
        !self.unflushed_files.is_empty()
    }

    pub fn complete_flush(&mut self, done: &PendingFlush, now_ms: i64) {
        debug_assert!(done.upto <= self.next_offset(), "a flush never covers offsets the log does not have");
        self.recovery_point = self.recovery_point.max(done.upto);
        self.unflushed_messages = (self.unflushed_messages - done.messages).max(0);
        if done.full {
            self.last_flush_ms = now_ms;
        }
    }

    /// A flush that failed: its files are flushed again next time, and the recovery point
    /// does not move past them.
    pub fn abort_flush(&mut self, failed: PendingFlush) {
        let active = self.active().file().clone();
        let mut files: Vec<Arc<File>> = failed.files.into_iter().filter(|f| !Arc::ptr_eq(f, &active)).collect();
        files.append(&mut self.unflushed_files);
        self.unflushed_files = files;
    }

    /// A range of at most `max_bytes` starting at the batch that holds `offset`; with
    /// `min_one`, at least that whole batch even when it is larger (KIP-74).
    pub fn read(&self, offset: i64, max_bytes: u64, min_one: bool) -> Result<Option<FileSlice>, ReadError> {
        self.read_below(offset, max_bytes, min_one, i64::MAX)
    }

    /// Like `read`, but nothing at or past `upper` (the last stable offset of a
    /// read_committed fetch) is returned.
    pub fn read_below(&self, offset: i64, max_bytes: u64, min_one: bool, upper: i64) -> Result<Option<FileSlice>, ReadError> {
        let end = self.next_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(ReadError::OffsetOutOfRange { offset, log_start: self.log_start_offset, log_end: end });
        }
        if offset >= upper {
            return Ok(None);
        }
        // Start at the segment holding `offset`; gaps (e.g. after compaction) move on.
        let first = self.segments.range(..=offset).next_back().map(|(b, _)| *b).unwrap_or(i64::MIN);
        for seg in self.segments.range(first..).map(|(_, s)| s) {
            if let Some((pos, h)) = seg.translate_offset(offset)? {
                // A bound inside this segment starts a batch (an open transaction's first).
                let limit = if upper < seg.next_offset() {
                    seg.translate_offset(upper)?.map(|(upper_pos, _)| upper_pos).unwrap_or(seg.size())
                } else {
                    seg.size()
                };
                let available = limit.saturating_sub(pos);
                let mut len = available.min(max_bytes);
                if min_one {
                    len = len.max((h.size as u64).min(available));
                }
                if len == 0 {
                    return Ok(None);
                }
                return Ok(Some(FileSlice { file: seg.file().clone(), position: pos, len }));
            }
        }
        Ok(None)
    }

    /// The first record whose timestamp is ≥ `ts`: (offset, timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> io::Result<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            if seg.max_timestamp() < ts {
                continue;
            }
            if let Some((pos, h)) = seg.find_timestamp(ts, self.log_start_offset)? {
                let found = self.record_in_batch(seg, pos, &h, |off, t| t >= ts && off >= self.log_start_offset)?;
                return Ok(found.or(Some((h.base_offset.max(self.log_start_offset), h.max_timestamp))));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (KIP-734): (offset, timestamp).
    pub fn max_timestamp_offset(&self) -> io::Result<Option<(i64, i64)>> {
        let Some(seg) = self
            .segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| (s.max_timestamp(), std::cmp::Reverse(s.base_offset)))
        else {
            return Ok(None);
        };
        let (ts, last_off) = (seg.max_timestamp(), seg.offset_of_max_timestamp());
        match seg.translate_offset(last_off)? {
            Some((pos, h)) => Ok(self.record_in_batch(seg, pos, &h, |_, t| t == ts)?.or(Some((last_off, ts)))),
            None => Ok(Some((last_off, ts))),
        }
    }

    /// The first record of the batch at `pos` satisfying `pred(offset, timestamp)`.
    /// Reads the batch (off the fetch path) and decompresses it when it is compressed.
    fn record_in_batch(
        &self,
        seg: &LogSegment,
        pos: u64,
        h: &BatchHeader,
        pred: impl Fn(i64, i64) -> bool,
    ) -> io::Result<Option<(i64, i64)>> {
        let mut buf = vec![0u8; h.size];
        seg.file().read_exact_at(&mut buf, pos)?;
        if h.attributes & batch::ATTR_TIMESTAMP_TYPE != 0 {
            return Ok(pred(h.base_offset, h.max_timestamp).then_some((h.base_offset, h.max_timestamp)));
        }
        if h.compression() == 0 {
            let mut found = None;
            let _ = batch::walk_records(&buf[HEADER_LEN..], h.record_count, |r| {
                let (off, ts) = (h.base_offset + r.offset_delta, h.base_timestamp + r.timestamp_delta);
                if found.is_none() && pred(off, ts) {
                    found = Some((off, ts));
                }
            });
            return Ok(found);
        }
        let mut bytes = bytes::Bytes::from(buf);
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(set.records.iter().map(|r| (r.offset, r.timestamp)).find(|&(o, t)| pred(o, t)))
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the log end) and
    /// deletes the segments that lie wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> io::Result<i64> {
        assert!(offset <= self.next_offset(), "delete_records_before({offset}) past the log end");
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        self.producers.prune_below(offset);
        self.epochs.truncate_from_start(offset)?;
        loop {
            let mut bases = self.segments.keys();
            match (bases.next(), bases.next()) {
                (Some(_), Some(&next_base)) if next_base <= offset => {
                    let (_, seg) = self.segments.pop_first().expect("two segments");
                    seg.delete()?;
                }
                _ => break,
            }
        }
        Ok(offset)
    }

    /// Deletes whole old segments past `retention.ms` / `retention.bytes`; returns how many.
    pub fn apply_retention(&mut self, now_ms: i64) -> io::Result<usize> {
        if !self.config.cleanup_policy.delete {
            return Ok(0);
        }
        let mut doomed = 0usize;
        let mut excess = if self.config.retention_bytes >= 0 {
            self.size_bytes() as i64 - self.config.retention_bytes
        } else {
            i64::MIN
        };
        for seg in self.segments.values() {
            let by_time = self.config.retention_ms >= 0
                && now_ms - seg.largest_timestamp_for_retention() > self.config.retention_ms;
            let by_size = excess != i64::MIN && excess - seg.size() as i64 >= 0;
            if seg.size() == 0 || !(by_time || by_size) {
                break;
            }
            if excess != i64::MIN {
                excess -= seg.size() as i64;
            }
            doomed += 1;
        }
        if doomed == 0 {
            return Ok(0);
        }
        if doomed == self.segments.len() {
            self.roll(now_ms)?; // keep an empty active segment at the log end
        }
        for _ in 0..doomed {
            let (_, seg) = self.segments.pop_first().expect("counted above");
            seg.delete()?;
        }
        let first = *self.segments.keys().next().unwrap();
        self.log_start_offset = self.log_start_offset.max(first);
        self.producers.prune_below(self.log_start_offset);
        self.epochs.truncate_from_start(self.log_start_offset)?;
        Ok(doomed)
    }

    /// Trims the active segment's indexes and fsyncs: the state a clean shutdown leaves.
    pub fn close(&mut self) -> io::Result<()> {
        let pending = self.begin_flush();
        for f in &pending.files {
            segment::sync_data(f)?;
        }
        self.recovery_point = pending.upto;
        self.producers.take_snapshot(&self.dir, self.next_offset())?;
        self.active_mut().on_become_inactive()
    }
}

/// Files to fsync and the offset that will be durable once they are.
pub struct PendingFlush {
    pub files: Vec<Arc<File>>,
    pub upto: i64,
    pub messages: i64,
    /// Up to the log end (the flush policy's flush), not only the rolled segments.
    pub full: bool,
}

impl PendingFlush {
    pub fn run(&self) -> io::Result<()> {
        self.files.iter().try_for_each(|f| segment::sync_data(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::test_support::batch;

    fn append(log: &mut Log, values: &[&[u8]], ts: i64) -> AppendInfo {
        let b = batch(values, ts);
        let h = batch::validate_produced(&b, 1 << 20).unwrap();
        log.append(&[(&b, h)], ts).unwrap()
    }


    fn opts(clean: bool, rp: i64) -> LoadOptions {
        LoadOptions { clean_shutdown: clean, recovery_point: rp, log_start_offset: 0, now_ms: 0 }
    }

    fn small() -> LogConfig {
        LogConfig { segment_bytes: 300, index_interval_bytes: 1, ..LogConfig::default() }
    }

    #[test]
    fn a_wrong_max_timestamp_in_the_header_is_corrected() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        let mut b = batch(&[b"a", b"b", b"c"], 7_000);
        b[batch::OFF_MAX_TIMESTAMP..batch::OFF_MAX_TIMESTAMP + 8].copy_from_slice(&(-1i64).to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[batch::OFF_CRC..batch::OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let h = batch::validate_produced(&b, 1 << 20).unwrap();
        assert_eq!(h.max_timestamp, 7_002, "the records' largest timestamp");
        log.append(&[(&b, h)], 10_000).unwrap();
        assert_eq!(log.offset_for_timestamp(7_001).unwrap(), Some((1, 7_001)));
        let s = log.read(0, 1 << 20, true).unwrap().unwrap();
        let mut stored = vec![0u8; s.len as usize];
        s.file.read_exact_at(&mut stored, s.position).unwrap();
        let stored_h = BatchHeader::parse(&stored).unwrap();
        assert_eq!(stored_h.max_timestamp, 7_002);
        assert_eq!(batch::compute_crc(&stored), stored_h.crc, "the CRC covers the corrected header");
    }

    #[test]
    fn a_roll_that_cannot_create_its_files_changes_nothing_and_the_next_one_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        std::fs::create_dir(&path).unwrap();
        let mut log = Log::open(&path, small(), opts(true, 0)).unwrap();
        append(&mut log, &[b"aaaaaaaaaa", b"bbbbbbbbbb"], 1_000);
        std::fs::remove_dir_all(&path).unwrap();
        assert!(log.roll(2_000).is_err(), "no directory to create the segment in");
        assert_eq!((log.segments.len(), log.unflushed_files.len()), (1, 0), "the failed roll changed nothing");
        append(&mut log, &[b"cccccccccc"], 2_000);
        std::fs::create_dir(&path).unwrap();
        log.roll(3_000).unwrap();
        assert_eq!((log.segments.len(), log.unflushed_files.len()), (2, 1), "the rolled log (its indexes got no entry, so were never opened)");
        append(&mut log, &[b"dddddddddd"], 3_000);
        assert_eq!(log.next_offset(), 4);
        assert!(log.read(3, 1 << 20, true).unwrap().is_some_and(|s| s.len > 0), "the new segment serves reads");
    }

    #[test]
    fn a_trimmed_index_takes_no_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        append(&mut log, &[b"aaaaaaaaaa"], 1_000);
        log.active_mut().on_become_inactive().unwrap();
        assert!(log.active().should_roll(1, 1, 1 << 30, i64::MAX, 1_000), "a trimmed active segment rolls before the next append");
        append(&mut log, &[b"bbbbbbbbbb"], 2_000);
        assert_eq!((log.segments.len(), log.next_offset()), (2, 2));
    }

    #[test]
    fn batches_without_timestamps_are_appended_and_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        for _ in 0..10 {
            append(&mut log, &[b"no timestamp"], -1);
        }
        append(&mut log, &[b"stamped"], 5_000);
        assert_eq!(log.next_offset(), 11);
        assert_eq!(log.offset_for_timestamp(4_000).unwrap(), Some((10, 5_000)));
        log.close().unwrap();
        let log = Log::open(dir.path(), small(), opts(true, 11)).unwrap();
        assert_eq!(log.next_offset(), 11);
    }

    #[test]
    fn offsets_rolls_reads_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        for i in 0..20 {
            let info = append(&mut log, &[b"aaaaaaaaaa", b"bbbbbbbbbb"], 1000 + i * 10);
            assert_eq!(info.first_offset, i * 2);
        }
        assert_eq!(log.next_offset(), 40);
        assert!(log.segment_count() > 3, "segments roll at segment.bytes");
        // A read in the middle of a batch starts at that batch.
        let s = log.read(13, 1 << 20, true).unwrap().unwrap();
        let mut hdr = [0u8; HEADER_LEN];
        s.file.read_exact_at(&mut hdr, s.position).unwrap();
        assert_eq!(BatchHeader::parse(&hdr).unwrap().base_offset, 12);
        // Max bytes below one batch still returns that batch whole.
        assert!(log.read(13, 1, true).unwrap().unwrap().len >= 60);
        assert!(log.read(40, 100, true).unwrap().is_none());
        assert!(matches!(log.read(41, 100, true), Err(ReadError::OffsetOutOfRange { .. })));
        // Record timestamps are base+0, base+1 in each batch.
        assert_eq!(log.offset_for_timestamp(1051).unwrap(), Some((11, 1051)));
        assert_eq!(log.offset_for_timestamp(1052).unwrap(), Some((12, 1060)));
        assert_eq!(log.offset_for_timestamp(5000).unwrap(), None);
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((39, 1191)));
    }

    #[test]
    fn reopen_after_clean_close_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        for i in 0..10 {
            append(&mut log, &[b"0123456789"], i);
        }
        log.close().unwrap();
        drop(log);
        let mut log = Log::open(dir.path(), small(), opts(true, 10)).unwrap();
        assert_eq!(log.next_offset(), 10);
        append(&mut log, &[b"x"], 100);
        let active_base = *log.segments.keys().next_back().unwrap();
        drop(log); // unclean: no close
        // Tear the last batch in half.
        let path = dir.path().join(segment::file_name(active_base, "log"));
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
        let log = Log::open(dir.path(), small(), opts(false, 10)).unwrap();
        assert_eq!(log.next_offset(), 10, "the torn batch is truncated away");
        assert!(log.read(9, 1000, true).unwrap().is_some());
    }

    #[test]
    fn a_full_index_mid_append_rolls_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_index_bytes: 16, ..small() };
        let mut log = Log::open(dir.path(), cfg, opts(true, 0)).unwrap();
        let batches: Vec<Vec<u8>> = (0..5).map(|i| batch(&[b"x"], i)).collect();
        for _ in 0..3 {
            let hs: Vec<_> = batches.iter().map(|b| (&b[..], batch::validate_produced(b, 1 << 20).unwrap())).collect();
            log.append(&hs, 0).unwrap();
        }
        assert_eq!(log.next_offset(), 15);
        assert!(log.segment_count() >= 2);
        for o in 0..15 {
            assert!(log.read(o, 1, true).unwrap().is_some(), "offset {o} readable");
        }
    }

    fn idempotent(pid: i64, seq: i32) -> Vec<u8> {
        let mut b = batch(&[b"0123456789"], 0);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn append_raw(log: &mut Log, b: &[u8]) -> Result<AppendInfo, AppendError> {
        let h = batch::validate_produced(b, 1 << 20).unwrap();
        log.append(&[(b, h)], 0)
    }

    #[test]
    fn retried_batches_are_deduplicated_across_clean_and_unclean_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        for seq in 0..12 {
            append_raw(&mut log, &idempotent(9, seq)).unwrap();
        }
        assert!(log.segment_count() > 1, "rolled: snapshots were taken");
        let dup = append_raw(&mut log, &idempotent(9, 11)).unwrap();
        assert!(dup.duplicate && dup.first_offset == 11);
        assert_eq!(log.next_offset(), 12, "nothing written twice");
        assert!(matches!(append_raw(&mut log, &idempotent(9, 20)), Err(AppendError::Producer(ProducerError::OutOfOrder(_)))));
        log.close().unwrap();
        drop(log);
        // Clean: from the snapshot at the log end.
        let mut log = Log::open(dir.path(), small(), opts(true, 12)).unwrap();
        assert!(append_raw(&mut log, &idempotent(9, 10)).unwrap().duplicate);
        append_raw(&mut log, &idempotent(9, 12)).unwrap();
        drop(log); // unclean
        // Unclean: the newest snapshot is older than the log end; the rest is replayed.
        let mut log = Log::open(dir.path(), small(), opts(false, 0)).unwrap();
        let again = append_raw(&mut log, &idempotent(9, 12)).unwrap();
        assert!(again.duplicate && again.first_offset == 12);
        assert_eq!(log.next_offset(), 13);
    }

    fn transactional(pid: i64, seq: i32) -> Vec<u8> {
        let mut b = idempotent(pid, seq);
        b[21..23].copy_from_slice(&batch::ATTR_TRANSACTIONAL.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn open_transactions_hold_the_stable_offset_and_aborts_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), opts(true, 0)).unwrap();
        append(&mut log, &[b"plain"], 0); // 0
        append_raw(&mut log, &transactional(1, 0)).unwrap(); // 1
        append_raw(&mut log, &transactional(2, 0)).unwrap(); // 2
        assert_eq!(log.last_stable_offset(), 1);
        // read_committed stops before the open transaction; read_uncommitted does not.
        let committed = log.read_below(0, 1 << 20, true, log.last_stable_offset()).unwrap().unwrap();
        let all = log.read(0, 1 << 20, true).unwrap().unwrap();
        assert!(committed.len < all.len);
        assert!(log.read_below(1, 1 << 20, true, 1).unwrap().is_none());
        assert_eq!(log.append_marker(1, 0, false, 0, 0).unwrap(), 3);
        assert_eq!(log.last_stable_offset(), 2);
        assert_eq!(log.append_marker(2, 0, true, 0, 0).unwrap(), 4);
        assert_eq!(log.last_stable_offset(), 5);
        assert_eq!(log.aborted_between(0, 5), vec![super::super::producer_state::AbortedTxn { producer_id: 1, first_offset: 1, last_offset: 3 }]);
        drop(log); // unclean: state replayed from the log, markers included
        let log = Log::open(dir.path(), LogConfig::default(), opts(false, 0)).unwrap();
        assert_eq!(log.last_stable_offset(), 5);
        assert_eq!(log.aborted_between(0, 5).len(), 1);
    }

    #[test]
    fn delete_records_moves_log_start_and_drops_whole_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), opts(true, 0)).unwrap();
        for i in 0..30 {
            append(&mut log, &[b"0123456789"], i);
        }
        let before = log.segment_count();
        assert_eq!(log.delete_records_before(17).unwrap(), 17);
        assert_eq!(log.log_start_offset(), 17);
        assert!(log.segment_count() < before);
        assert!(*log.segments.keys().next().unwrap() <= 17, "the segment holding 17 stays");
        assert!(matches!(log.read(16, 100, true), Err(ReadError::OffsetOutOfRange { .. })));
        assert!(log.read(17, 100, true).unwrap().is_some());
        assert_eq!(log.delete_records_before(5).unwrap(), 17, "never moves back");
        assert_eq!(log.delete_records_before(30).unwrap(), 30);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.next_offset(), 30);
    }

    #[test]
    fn retention_deletes_old_segments_and_moves_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { retention_bytes: 400, ..small() };
        let mut log = Log::open(dir.path(), cfg, opts(true, 0)).unwrap();
        for i in 0..30 {
            append(&mut log, &[b"0123456789"], i);
        }
        let before = log.segment_count();
        assert!(log.apply_retention(100).unwrap() > 0);
        assert!(log.segment_count() < before);
        assert!(log.size_bytes() <= 400 + 300);
        assert!(log.log_start_offset() > 0);
        assert!(matches!(log.read(0, 100, true), Err(ReadError::OffsetOutOfRange { .. })));
        let cfg = LogConfig { retention_ms: 10, ..small() };
        log.set_config(cfg);
        log.apply_retention(1_000_000).unwrap();
        assert_eq!(log.log_start_offset(), 30);
        assert_eq!(log.next_offset(), 30);
    }
}

#[path = "log_replica.rs"]
mod replica;

#[cfg(test)]
#[path = "log_recovery_tests.rs"]
mod recovery_tests;
