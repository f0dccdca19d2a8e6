//! The cleaner on real log directories: one value per key after cleaning, offsets kept,
//! codecs kept, tombstones removed only after `delete.retention.ms`, and a crash at every
//! step of a swap leaving a readable log with every latest value.

use super::*;
use crate::config::{CleanupPolicy, LogConfig};
use crate::storage::batch::validate_produced;
use crate::storage::log::{LoadOptions, Log};
use crate::storage::log::swap::CRASH_AFTER_STEP;
use crate::testing::records::{self, record};
use kafka_protocol::records::Compression;
use std::collections::BTreeMap;
use std::path::Path;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2000,
        index_interval_bytes: 1,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        delete_retention_ms: 60_000,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Partition {
    let opts = LoadOptions { clean_shutdown: false, recovery_point: 0, log_start_offset: 0, now_ms: crate::time::now_ms() };
    Partition::new("t", 0, Log::open(dir, config(), opts).unwrap())
}

/// One batch of `(key, value)` records (value None: a tombstone) at timestamp `ts`.
fn append(part: &Partition, kvs: &[(&str, Option<&str>)], ts: i64, compression: Compression) {
    let records: Vec<_> = kvs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| record(i as i64, ts, Some(Bytes::copy_from_slice(k.as_bytes())), v.map(|v| Bytes::copy_from_slice(v.as_bytes()))))
        .collect();
    let buf = records::batch(&records, compression);
    let h = validate_produced(&buf, usize::MAX).unwrap();
    part.append(&[(&buf[..], h)]).unwrap();
}

/// Every record in the log: offset → (key, value).
fn contents(part: &Partition) -> BTreeMap<i64, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut offset = part.offsets().log_start;
    while let Ok((Some(slice), _)) = part.read(offset, 1 << 20, true) {
        let mut buf = vec![0u8; slice.len as usize];
        slice.file.read_exact_at(&mut buf, slice.position).unwrap();
        let mut b = Bytes::from(buf);
        let before = offset;
        for set in RecordBatchDecoder::decode_all(&mut b).unwrap() {
            for r in set.records {
                let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                out.insert(r.offset, (k, r.value.map(|v| String::from_utf8(v.to_vec()).unwrap())));
                offset = offset.max(r.offset + 1);
            }
        }
        if offset == before {
            break;
        }
    }
    out
}

/// The latest value of every key, as a consumer of the whole log would end up with.
fn latest(part: &Partition) -> BTreeMap<String, Option<String>> {
    contents(part).into_values().collect()
}

/// 20 keys × 10 updates, in batches of 5 records, then a roll so everything is closed.
fn fill(part: &Partition, compression: Compression) {
    let mut n = 0;
    for round in 0..10 {
        for chunk in 0..4 {
            let kvs: Vec<(String, Option<String>)> =
                (0..5).map(|i| (format!("k{}", chunk * 5 + i), Some(format!("v{round}-{n}")))).collect();
            n += 1;
            let refs: Vec<(&str, Option<&str>)> = kvs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            append(part, &refs, 1_000 + round, compression);
        }
    }
    part.log().roll(10_000).unwrap();
}

fn no_throttle() -> Throttle {
    Throttle::new(f64::INFINITY)
}

#[test]
fn cleaning_keeps_one_value_per_key_at_its_offset() {
    for compression in [Compression::None, Compression::Gzip, Compression::Lz4, Compression::Zstd, Compression::Snappy] {
        let dir = tempfile::tempdir().unwrap();
        let part = open(dir.path());
        fill(&part, compression);
        let before = contents(&part);
        let want = latest(&part);
        let size_before = part.log().size_bytes();
        let (next_dirty, stats) = clean(&part, 0, false, 1 << 20, &no_throttle(), 20_000).unwrap().expect("dirty");
        assert_eq!(next_dirty, 200);
        let after = contents(&part);
        assert_eq!(after.len(), 20, "{compression:?}: one record per key");
        assert_eq!(latest(&part), want, "{compression:?}: the latest values survive");
        for (offset, kv) in &after {
            assert_eq!(before.get(offset), Some(kv), "{compression:?}: records keep their offsets");
        }
        assert_eq!(stats.records_read, 200);
        assert_eq!(stats.records_kept, 20);
        assert!(part.log().size_bytes() * 4 < size_before, "{compression:?}: the log shrank");
        assert_eq!(part.offsets().high_watermark, 200, "the log end never moves");
        // Reading from a removed offset skips to the next record.
        let (slice, _) = part.read(3, 1 << 20, true).unwrap();
        assert!(slice.is_some());
        // Batches keep their codec (the last round's batches survive whole).
        let mut hdr = [0u8; HEADER_LEN];
        let s = part.read(before.keys().rev().nth(3).copied().unwrap(), 1 << 20, true).unwrap().0.unwrap();
        s.file.read_exact_at(&mut hdr, s.position).unwrap();
        assert_eq!(BatchHeader::parse(&hdr).unwrap().compression(), compression as i16);
        // A second pass with nothing new to do does nothing.
        assert!(clean(&part, next_dirty, false, 1 << 20, &no_throttle(), 20_000).unwrap().is_none());
        // And it all holds after a reopen.
        drop(part);
        let part = open(dir.path());
        assert_eq!(contents(&part), after);
    }
}

#[test]
fn a_partly_kept_batch_is_re_encoded_with_its_codec() {
    let dir = tempfile::tempdir().unwrap();
    let part = open(dir.path());
    append(&part, &[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))], 1000, Compression::Zstd);
    append(&part, &[("b", Some("2"))], 1001, Compression::None);
    part.log().roll(2000).unwrap();
    clean(&part, 0, false, 1 << 20, &no_throttle(), 3000).unwrap().unwrap();
    let got = contents(&part);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 2, 3]);
    let s = part.read(0, 1 << 20, true).unwrap().0.unwrap();
    let mut hdr = [0u8; HEADER_LEN];
    s.file.read_exact_at(&mut hdr, s.position).unwrap();
    let h = BatchHeader::parse(&hdr).unwrap();
    assert_eq!((h.compression(), h.record_count, h.base_offset, h.last_offset()), (4, 2, 0, 2));
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let part = open(dir.path());
    append(&part, &[("a", Some("1")), ("b", Some("1"))], 1_000, Compression::None);
    append(&part, &[("a", None)], 2_000, Compression::None);
    part.log().roll(3_000).unwrap();
    // Cleaned within delete.retention.ms of the tombstone: it stays, the old value goes.
    clean(&part, 0, false, 1 << 20, &no_throttle(), 10_000).unwrap().unwrap();
    assert_eq!(latest(&part), BTreeMap::from([("a".into(), None), ("b".into(), Some("1".into()))]));
    assert_eq!(contents(&part).len(), 2);
    // Once its segment is older than delete.retention.ms, the next pass removes it.
    append(&part, &[("c", Some("1"))], 100_000, Compression::None);
    part.log().roll(100_000).unwrap();
    clean(&part, 3, false, 1 << 20, &no_throttle(), 100_000).unwrap().unwrap();
    assert_eq!(latest(&part), BTreeMap::from([("b".into(), Some("1".into())), ("c".into(), Some("1".into()))]));
}

#[test]
fn the_active_segment_is_never_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let part = open(dir.path());
    append(&part, &[("a", Some("1"))], 1000, Compression::None);
    append(&part, &[("a", Some("2"))], 1001, Compression::None);
    assert!(clean(&part, 0, false, 1 << 20, &no_throttle(), 5000).unwrap().is_none(), "only the active segment");
    assert_eq!(contents(&part).len(), 2);
}

#[test]
fn a_crash_at_any_swap_step_leaves_every_latest_value() {
    for step in [1u8, 2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let part = open(dir.path());
        fill(&part, Compression::Lz4);
        let want = latest(&part);
        let before = contents(&part);
        if step == 1 {
            // A crash while the cleaned file was being written: only `.cleaned` exists.
            std::fs::write(dir.path().join(segment::file_name(0, CLEANED)), b"partial").unwrap();
        } else {
            CRASH_AFTER_STEP.with(|c| c.set(step));
            let err = clean(&part, 0, false, 1 << 20, &no_throttle(), 20_000).expect_err("the injected crash");
            CRASH_AFTER_STEP.with(|c| c.set(0));
            assert!(err.to_string().contains("injected crash"), "{err}");
        }
        drop(part);
        let part = open(dir.path());
        assert_eq!(latest(&part), want, "step {step}: every key's latest value is there");
        let after = contents(&part);
        for (offset, kv) in &after {
            assert_eq!(before.get(offset), Some(kv), "step {step}: no record changed offset");
        }
        assert_eq!(part.offsets().high_watermark, 200, "step {step}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned") || n.ends_with(".deleted"))
            .collect();
        assert!(leftovers.is_empty(), "step {step}: {leftovers:?}");
        // And cleaning completes afterwards.
        clean(&part, 0, false, 1 << 20, &no_throttle(), 20_000).unwrap();
        assert_eq!(contents(&part).len(), 20, "step {step}");
    }
}

#[test]
fn min_compaction_lag_keeps_young_segments_out_of_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { min_compaction_lag_ms: 10_000, ..config() };
    let part = Partition::new("t", 0, Log::open(dir.path(), cfg, LoadOptions::fresh(crate::time::now_ms())).unwrap());
    append(&part, &[("a", Some("old"))], 1_000, Compression::None);
    part.log().roll(0).unwrap();
    append(&part, &[("a", Some("young"))], 50_000, Compression::None);
    part.log().roll(0).unwrap();
    // At 55 s the second segment is 5 s old, younger than the lag: passes stop below it.
    assert_eq!(part.log().first_uncleanable_offset(55_000), 1);
    clean(&part, 0, false, 1 << 20, &no_throttle(), 55_000).unwrap();
    assert_eq!(contents(&part).len(), 2, "the old value stays while its successor is younger than the lag");
    assert_eq!(part.log().first_uncleanable_offset(61_000), 2);
    clean(&part, 0, false, 1 << 20, &no_throttle(), 61_000).unwrap().unwrap();
    assert_eq!(latest(&part), BTreeMap::from([("a".into(), Some("young".into()))]));
    assert_eq!(contents(&part).len(), 1);
}

#[test]
fn readers_see_a_consistent_log_while_cleaning_runs() {
    let dir = tempfile::tempdir().unwrap();
    let part = std::sync::Arc::new(open(dir.path()));
    fill(&part, Compression::None);
    let want = latest(&part);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (part, stop) = (part.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let got = contents(&part);
                let latest: BTreeMap<_, _> = got.clone().into_values().collect();
                assert_eq!(latest.len(), 20, "every key is readable at every moment");
                let offsets: Vec<i64> = got.keys().copied().collect();
                assert!(offsets.windows(2).all(|w| w[0] < w[1]));
                reads += 1;
            }
            reads
        })
    };
    for round in 0..5 {
        let kvs: Vec<(String, Option<String>)> = (0..20).map(|k| (format!("k{k}"), Some(format!("late-{round}")))).collect();
        let refs: Vec<(&str, Option<&str>)> = kvs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        append(&part, &refs, 20_000 + round, Compression::None);
        part.log().roll(0).unwrap();
        clean(&part, 0, false, 1 << 20, &no_throttle(), 30_000).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() >= 1);
    assert_ne!(latest(&part), want);
    assert!(latest(&part).values().all(|v| v.as_deref() == Some("late-4")));
}
