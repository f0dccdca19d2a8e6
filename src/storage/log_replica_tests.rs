//! A follower's log copied batch by batch from a leader's stays byte-identical to it; a
//! batch that does not continue the log or is corrupt is refused without a trace; and
//! truncation to an epoch's end (KIP-279) leaves a log that serves, restarts and takes
//! the new leader's batches at the right offset.

use super::super::*;
use crate::storage::batch::test_support::batch;
use crate::storage::leader_epoch_cache::FILE as EPOCHS;

fn cfg() -> LogConfig {
    LogConfig { segment_bytes: 400, index_interval_bytes: 128, ..LogConfig::default() }
}

fn open(dir: &Path) -> Log {
    Log::open(dir, cfg(), LoadOptions::fresh(0)).unwrap()
}

/// A leader's batch for `offset` as it is stored: offset and leader epoch stamped (the
/// epoch lies outside the CRC, so the stored CRC still holds).
fn stored(offset: i64, epoch: i32, values: &[&str]) -> Vec<u8> {
    let vals: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let mut b = batch(&vals, 1_000 + offset);
    b[0..8].copy_from_slice(&offset.to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    b
}

fn append(log: &mut Log, bytes: &[u8]) -> Result<AppendInfo, AppendError> {
    let h = BatchHeader::parse(bytes).unwrap();
    log.append_replicated(&[(bytes, h)], 5_000)
}

/// Batches of two records each for offsets `from..to`, under `epoch`.
fn fill(log: &mut Log, from: i64, to: i64, epoch: i32) {
    let mut o = from;
    while o < to {
        let (a, b) = (format!("r{o}"), format!("r{}", o + 1));
        append(log, &stored(o, epoch, &[&a, &b])).unwrap();
        o += 2;
    }
}

/// The bytes of every segment file, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Every (offset, epoch) the log serves, batch by batch from its start.
fn served(log: &Log) -> Vec<(i64, i32)> {
    super::super::recovery_tests::served_batches(log)
        .iter()
        .flat_map(|h| (h.base_offset..=h.last_offset()).map(move |o| (o, h.partition_leader_epoch)))
        .collect()
}

#[test]
fn a_follower_copy_is_byte_identical_and_refuses_what_does_not_continue_it() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut leader, mut follower) = (open(ld.path()), open(fd.path()));
    for (from, to, epoch) in [(0, 20, 0), (20, 30, 2), (30, 40, 5)] {
        fill(&mut leader, from, to, epoch);
        fill(&mut follower, from, to, epoch);
    }
    assert!(leader.segment_count() > 2, "several segments");
    assert_eq!(files(ld.path()), files(fd.path()), "the same segments, byte for byte");
    assert_eq!(follower.leader_epochs(), vec![(0, 0), (2, 20), (5, 30)], "epochs as the batches carry them");
    assert_eq!(std::fs::read_to_string(fd.path().join(EPOCHS)).unwrap(), "0\n3\n0 0\n2 20\n5 30\n");

    let before = files(fd.path());
    let gap = append(&mut follower, &stored(42, 5, &["x"]));
    assert!(matches!(gap, Err(AppendError::Invalid(_))), "a gap: {gap:?}");
    let overlap = append(&mut follower, &stored(38, 5, &["x"]));
    assert!(matches!(overlap, Err(AppendError::Invalid(_))), "an overlap");
    let mut flipped = stored(40, 5, &["x"]);
    let last = flipped.len() - 2;
    flipped[last] ^= 0x01;
    assert!(matches!(append(&mut follower, &flipped), Err(AppendError::Invalid(_))), "a bad CRC");
    assert_eq!(files(fd.path()), before, "nothing written by a refused append");
    assert_eq!(follower.next_offset(), 40);
    append(&mut follower, &stored(40, 5, &["x"])).unwrap();
    assert_eq!(follower.next_offset(), 41);
}

#[test]
fn truncation_to_an_epochs_end_leaves_a_log_that_serves_restarts_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    fill(&mut log, 0, 20, 0);
    fill(&mut log, 20, 40, 3);
    let segments = log.segment_count();
    assert!(segments > 3);
    // A new leader says epoch 0 ended at 12 (its log diverged after that).
    assert_eq!(log.end_offset_for_epoch(0), (0, 20));
    log.truncate_to(12, 6_000).unwrap();
    assert_eq!(log.next_offset(), 12);
    assert!(log.segment_count() < segments, "segments wholly past the point are gone");
    assert_eq!(served(&log), (0..12).map(|o| (o, 0)).collect::<Vec<_>>());
    assert_eq!(log.leader_epochs(), vec![(0, 0)], "epoch 3 began after the point");
    // A straddling batch goes whole: truncating to 11 leaves 10.
    log.truncate_to(11, 6_000).unwrap();
    assert_eq!(log.next_offset(), 10);
    // The new leader's batches follow at once, and everything survives a restart.
    fill(&mut log, 10, 16, 4);
    drop(log);
    let mut log = Log::open(dir.path(), cfg(), LoadOptions { clean_shutdown: false, recovery_point: 0, log_start_offset: 0, now_ms: 7_000 }).unwrap();
    assert_eq!(log.next_offset(), 16);
    assert_eq!(log.leader_epochs(), vec![(0, 0), (4, 10)]);
    let mut want: Vec<(i64, i32)> = (0..10).map(|o| (o, 0)).collect();
    want.extend((10..16).map(|o| (o, 4)));
    assert_eq!(served(&log), want);
    // Below the log start the log is emptied and begins at the point.
    log.delete_records_before(8).unwrap();
    log.truncate_to(4, 8_000).unwrap();
    assert_eq!((log.log_start_offset(), log.next_offset()), (4, 4));
    assert!(served(&log).is_empty());
    fill(&mut log, 4, 8, 6);
    assert_eq!(served(&log), (4..8).map(|o| (o, 6)).collect::<Vec<_>>());
}

#[test]
fn truncation_rebuilds_producer_state_without_the_removed_batches() {
    use crate::storage::batch::OFF_PRODUCER_ID;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    // An idempotent producer's batches: producer id 7, epoch 0, sequences 0, 2, 4, …
    let idempotent = |offset: i64, seq: i32| {
        let mut b = stored(offset, 0, &["a", "b"]);
        b[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&7i64.to_be_bytes());
        b[OFF_PRODUCER_ID + 8..OFF_PRODUCER_ID + 10].copy_from_slice(&0i16.to_be_bytes());
        b[OFF_PRODUCER_ID + 10..OFF_PRODUCER_ID + 14].copy_from_slice(&seq.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[batch::OFF_CRC..batch::OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    };
    for i in 0..10 {
        append(&mut log, &idempotent(i * 2, (i * 2) as i32)).unwrap();
    }
    assert_eq!(log.producer_state().entry(7).unwrap().last_seq(), Some(19));
    log.truncate_to(8, 9_000).unwrap();
    assert_eq!(log.producer_state().entry(7).unwrap().last_seq(), Some(7), "the producer's state as of offset 8");
    drop(log);
    let log = Log::open(dir.path(), cfg(), LoadOptions::fresh(10_000)).unwrap();
    assert_eq!(log.producer_state().entry(7).unwrap().last_seq(), Some(7), "and after a restart (no snapshot from past the point)");
}
