//! A log after crashes, flipped bits and rolls: recovery keeps every intact batch and
//! every offset, reads refuse a broken batch chain, rolled segments get flushed.

use super::*;
use crate::storage::batch::test_support::batch;

fn opts(clean: bool, rp: i64) -> LoadOptions {
    LoadOptions { clean_shutdown: clean, recovery_point: rp, log_start_offset: 0, now_ms: 0 }
}

/// Segments of about 600 bytes; `index_interval` decides how sparse the index is.
fn cfg(index_interval: u64) -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: index_interval, ..LogConfig::default() }
}

fn fill(log: &mut Log, n: i64) {
    for i in 0..n {
        let b = batch(&[format!("record-{i:05}").as_bytes()], 1_000 + i);
        let h = batch::validate_produced(&b, 1 << 20).unwrap();
        assert_eq!(log.append(&[(&b, h)], 1_000 + i).unwrap().first_offset, i);
    }
}

fn flip(path: &Path, pos: u64, mask: u8) {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, pos).unwrap();
    f.write_all_at(&[b[0] ^ mask], pos).unwrap();
}

/// Every offset the log serves, read batch by batch from the start.
fn served(log: &Log) -> Vec<i64> {
    served_batches(log).iter().flat_map(|h| h.base_offset..=h.last_offset()).collect()
}

/// The header of every batch the log serves, read one by one from its start.
pub(super) fn served_batches(log: &Log) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while let Some(s) = log.read(next, 1, true).unwrap() {
        let mut head = [0u8; HEADER_LEN];
        s.file.read_exact_at(&mut head, s.position).unwrap();
        let h = BatchHeader::parse(&head).unwrap();
        next = h.last_offset() + 1;
        out.push(h);
    }
    out
}

#[test]
fn a_flipped_byte_in_an_old_segment_costs_that_batch_only_never_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 100);
    let segments = log.segment_count();
    assert!(segments > 5);
    // Batch 3 of segment 0, in its record bytes (past the 61-byte header).
    let seg0 = log.segments.values().next().unwrap();
    let (pos, h) = seg0.translate_offset(3).unwrap().unwrap();
    assert_eq!(h.base_offset, 3);
    drop(log); // kill -9: nothing flushed, the recovery point is 0
    flip(&dir.path().join(segment::file_name(0, "log")), pos + HEADER_LEN as u64 + 4, 0x10);
    let mut log = Log::open(dir.path(), cfg(4096), opts(false, 0)).unwrap();
    assert_eq!(log.segment_count(), segments, "no later segment deleted");
    assert_eq!(log.next_offset(), 100, "the log end stays: no offset is handed out again");
    assert_eq!(served(&log), (0..100).filter(|&o| o != 3).collect::<Vec<_>>(), "every intact batch is served");
    fill_from(&mut log, 100);
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.starts_with("00000000000000000000.log.corrupted-")), "the original is kept: {names:?}");
    // A second unclean start finds a sound log and changes nothing.
    drop(log);
    let log = Log::open(dir.path(), cfg(4096), opts(false, 0)).unwrap();
    assert_eq!(log.next_offset(), 101);
    assert_eq!(served(&log).len(), 100);
}

fn fill_from(log: &mut Log, expect_first: i64) {
    let b = batch(&[b"after recovery"], 9_000);
    let h = batch::validate_produced(&b, 1 << 20).unwrap();
    assert_eq!(log.append(&[(&b, h)], 9_000).unwrap().first_offset, expect_first);
}

#[test]
fn a_flipped_length_in_an_old_segment_cuts_out_only_the_unreadable_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 60);
    let (pos, _) = log.segments.values().next().unwrap().translate_offset(2).unwrap().unwrap();
    drop(log);
    flip(&dir.path().join(segment::file_name(0, "log")), pos + batch::OFF_LENGTH as u64 + 2, 0x01);
    let log = Log::open(dir.path(), cfg(4096), opts(false, 0)).unwrap();
    assert_eq!(log.next_offset(), 60);
    assert_eq!(served(&log), (0..60).filter(|&o| o != 2).collect::<Vec<_>>());
}

#[test]
fn a_torn_tail_of_the_last_segment_is_still_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 30);
    let active = *log.segments.keys().next_back().unwrap();
    drop(log);
    let path = dir.path().join(segment::file_name(active, "log"));
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
    let log = Log::open(dir.path(), cfg(4096), opts(false, 0)).unwrap();
    assert_eq!(log.next_offset(), 29, "the torn last batch goes, as in Kafka");
    assert_eq!(served(&log), (0..29).collect::<Vec<_>>());
}

#[test]
fn a_read_across_a_flipped_length_is_corrupt_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse index (one entry per 4 KiB, so none here): reads walk from the segment start.
    let config = LogConfig { segment_bytes: 1 << 20, ..cfg(4096) };
    let mut log = Log::open(dir.path(), config.clone(), opts(true, 0)).unwrap();
    fill(&mut log, 40);
    log.roll(5_000).unwrap();
    fill_from(&mut log, 40);
    let (pos, _) = log.segments.values().next().unwrap().translate_offset(10).unwrap().unwrap();
    flip(&dir.path().join(segment::file_name(0, "log")), pos + batch::OFF_LENGTH as u64 + 2, 0x02);
    for target in [11, 25, 39] {
        match log.read(target, 1 << 20, true) {
            Err(ReadError::Corrupt(msg)) => assert!(msg.contains("00000000000000000000.log is corrupt at byte"), "{msg}"),
            other => panic!("offset {target}: expected a corruption error, got {other:?}"),
        }
    }
    // Before the damage, and in the next segment, reads go on.
    assert!(log.read(5, 1 << 20, true).unwrap().is_some());
    assert!(log.read(40, 1 << 20, true).unwrap().is_some());
}

#[test]
fn an_index_entry_that_does_not_match_its_batch_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..cfg(1) }, opts(true, 0)).unwrap();
    fill(&mut log, 20);
    let (pos, _) = log.segments.values().next().unwrap().translate_offset(12).unwrap().unwrap();
    // Batch 12's base offset now claims 13: the entry for offset 12 points at a batch ending at 13.
    flip(&dir.path().join(segment::file_name(0, "log")), pos + 7, 0x01);
    assert!(matches!(log.read(12, 1 << 20, true), Err(ReadError::Corrupt(_))));
}

#[test]
fn rolled_segments_are_flushed_and_move_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 50);
    assert!(log.has_unflushed_rolled());
    assert_eq!(log.recovery_point(), 0);
    let pending = log.begin_flush_rolled().unwrap();
    // 4 KiB segments get no offset index entry (index.interval.bytes is 4096): each rolled
    // segment's log and time index; an index never written is never opened.
    assert_eq!(pending.files.len(), 2 * (log.segment_count() - 1), "each rolled segment's log and time index");
    pending.run().unwrap();
    log.complete_flush(&pending, 0);
    let active = *log.segments.keys().next_back().unwrap();
    assert_eq!(log.recovery_point(), active, "everything below the active segment is durable");
    assert!(log.begin_flush_rolled().is_none());
}

#[test]
fn a_failed_flush_is_retried_and_does_not_move_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 30);
    let pending = log.begin_flush_rolled().unwrap();
    let n = pending.files.len();
    log.abort_flush(pending);
    assert_eq!(log.recovery_point(), 0);
    assert_eq!(log.begin_flush_rolled().unwrap().files.len(), n);
}

#[test]
fn recovered_segments_are_flushed_before_the_recovery_point_passes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 50);
    let segments = log.segment_count();
    drop(log);
    let mut log = Log::open(dir.path(), cfg(4096), opts(false, 0)).unwrap();
    let pending = log.begin_flush_rolled().expect("recovered closed segments wait for an fsync");
    assert_eq!(pending.files.len(), 2 * (segments - 1), "each recovered segment's log and time index");
}

#[test]
fn closed_segments_hold_no_index_until_a_lookup_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(1), opts(true, 0)).unwrap();
    assert_eq!(log.active().indexes_mapped(), (false, false), "a new segment opens its indexes at the first entry");
    fill(&mut log, 50);
    assert!(log.segment_count() > 3);
    let closed: Vec<i64> = log.segments.keys().copied().take(log.segment_count() - 1).collect();
    for b in &closed {
        assert_eq!(log.segments[b].indexes_mapped(), (false, false), "segment {b} let go of its indexes at the roll");
    }
    assert_eq!(served(&log), (0..50).collect::<Vec<_>>(), "every offset served through lazily mapped indexes");
    assert!(log.segments[&closed[0]].indexes_mapped().0, "a read maps the offset index");
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), cfg(1), opts(true, 0)).unwrap();
    for b in &closed {
        assert_eq!(log.segments[b].indexes_mapped(), (false, false), "after a restart too");
    }
    assert_eq!(served(&log), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_log_without_producer_ids_still_gets_producer_snapshots_so_a_start_reads_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    fill(&mut log, 50);
    let active = *log.segments.keys().next_back().unwrap();
    assert!(active > 0);
    assert!(
        dir.path().join(crate::storage::producer_state::snapshot_name(active)).exists(),
        "the roll to {active} snapshotted the (empty) producer state"
    );
    log.close().unwrap();
    assert!(dir.path().join(crate::storage::producer_state::snapshot_name(50)).exists(), "and so did the clean close");
}

/// The leader-epoch checkpoint follows the log: every batch is stamped with the leader's
/// epoch and the epoch's start is recorded before its first batch; retention, DeleteRecords
/// and crash recovery trim it; a missing or damaged checkpoint is rebuilt from the
/// batches' stamps; OffsetForLeaderEpoch's answer comes from it.
#[test]
fn the_leader_epoch_checkpoint_follows_appends_truncation_and_restarts() {
    use crate::storage::leader_epoch_cache::FILE;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(4096), opts(true, 0)).unwrap();
    assert_eq!(log.leader_epochs(), vec![(crate::LEADER_EPOCH, 0)], "an empty log answers for its leader's epoch");
    assert_eq!(log.end_offset_for_epoch(crate::LEADER_EPOCH), (crate::LEADER_EPOCH, 0));
    fill(&mut log, 40);
    assert_eq!(log.end_offset_for_epoch(crate::LEADER_EPOCH), (crate::LEADER_EPOCH, 40));
    assert_eq!(log.end_offset_for_epoch(crate::LEADER_EPOCH + 1), (-1, -1), "a newer epoch is unknown");
    let first = log.segments.values().next().unwrap();
    let (_, h) = first.translate_offset(0).unwrap().unwrap();
    assert_eq!(h.partition_leader_epoch, crate::LEADER_EPOCH, "the batch carries the leader's epoch");
    assert_eq!(std::fs::read_to_string(dir.path().join(FILE)).unwrap(), format!("0\n1\n{} 0\n", crate::LEADER_EPOCH));

    // DeleteRecords moves the epoch's start with the log start.
    log.delete_records_before(12).unwrap();
    assert_eq!(log.leader_epochs(), vec![(crate::LEADER_EPOCH, 12)]);
    drop(log);
    let log = Log::open(dir.path(), cfg(4096), LoadOptions { log_start_offset: 12, ..opts(true, 40) }).unwrap();
    assert_eq!(log.leader_epochs(), vec![(crate::LEADER_EPOCH, 12)], "read back as written");
    drop(log);

    // A damaged checkpoint is rebuilt from the batches, and so is a missing one.
    for damage in [Some("0\n9\nnonsense\n"), None] {
        match damage {
            Some(text) => std::fs::write(dir.path().join(FILE), text).unwrap(),
            None => std::fs::remove_file(dir.path().join(FILE)).unwrap(),
        }
        let log = Log::open(dir.path(), cfg(4096), LoadOptions { log_start_offset: 12, ..opts(true, 40) }).unwrap();
        assert_eq!(log.leader_epochs(), vec![(crate::LEADER_EPOCH, 12)], "rebuilt after {damage:?}");
        assert_eq!(log.end_offset_for_epoch(crate::LEADER_EPOCH), (crate::LEADER_EPOCH, 40));
    }

    // A checkpoint that names more than the recovered log holds is trimmed to it.
    std::fs::write(dir.path().join(FILE), format!("0\n2\n{} 12\n{} 45\n", crate::LEADER_EPOCH, crate::LEADER_EPOCH + 3)).unwrap();
    let log = Log::open(dir.path(), cfg(4096), LoadOptions { log_start_offset: 12, ..opts(false, 0) }).unwrap();
    assert_eq!(log.leader_epochs(), vec![(crate::LEADER_EPOCH, 12)], "an epoch past the log end is dropped");
}
