//! Log compaction costs:
//!
//!   cargo bench --bench cleaner [-- --mb 256]
//!
//! 1. Cleaning throughput: a partition of `--mb` MB of 100-byte values over 100,000 keys
//!    (batches of 500 records, uncompressed and lz4) is cleaned by one `Cleaner` pass;
//!    reported as MB of log read per second and the size left.
//! 2. Produce latency while the cleaner runs: end-to-end latency of 100-byte records at
//!    2,000/s on an in-process broker, first with the cleaner idle, then while it cleans
//!    a compacted topic of `--mb` MB filled through librdkafka.
//!
//! Under `cargo test` (no `--bench` argument) it is a short smoke with 4 MB.

#[path = "harness/mod.rs"]
mod harness;

use bytes::{Bytes, BytesMut};
use ferrite::config::{CleanupPolicy, LogConfig};
use ferrite::storage::batch::validate_produced;
use ferrite::storage::cleaner::{clean, Throttle};
use ferrite::storage::log::{LoadOptions, Log};
use ferrite::storage::Partition;
use ferrite::testing::records::{self, record};
use kafka_protocol::records::Compression;
use rdkafka::producer::{BaseRecord, Producer};
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;

/// 100 bytes of text that compresses about as well as typical JSON (not to nothing).
fn value(seed: usize) -> Bytes {
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let words = ["\"id\":", "\"name\":\"", "\"price\":", "\"tags\":[", "\"ok\":true,", "\"", ",", "}"];
    let mut v = String::with_capacity(110);
    while v.len() < 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            v.push_str(words[(x >> 8) as usize % words.len()]);
        } else {
            v.push_str(&format!("{:x}", x >> 40));
        }
    }
    v.truncate(100);
    Bytes::from(v)
}

fn batch(first: usize, n: usize, compression: Compression) -> BytesMut {
    let records: Vec<_> = (0..n)
        .map(|i| record(i as i64, 1_000, Some(Bytes::from(format!("key-{:06}", (first + i) % KEYS))), Some(value(first + i))))
        .collect();
    records::batch(&records, compression)
}

/// Cleans `mb` MB of updates in one pass; returns (MB/s read, records/s, MB before, MB after).
fn cleaning_throughput(mb: usize, compression: Compression) -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 << 20,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        ..LogConfig::default()
    };
    let opts = LoadOptions::fresh(ferrite::time::now_ms());
    let part = Partition::new("bench", 0, Log::open(dir.path(), config, opts).unwrap());
    let mut n = 0;
    while part.log().size_bytes() < (mb as u64) << 20 {
        let b = batch(n, 500, compression);
        let h = validate_produced(&b, usize::MAX).unwrap();
        part.append(&[(&b[..], h)]).unwrap();
        n += 500;
    }
    part.log().roll(ferrite::time::now_ms()).unwrap();
    let before = part.log().size_bytes() as f64 / 1e6;
    let start = Instant::now();
    let (_, stats) = clean(&part, 0, false, 128 << 20, &Throttle::new(f64::INFINITY), ferrite::time::now_ms()).unwrap().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stats.records_kept as usize, KEYS.min(n), "one record per key");
    let after = part.log().size_bytes() as f64 / 1e6;
    (stats.bytes_read as f64 / 1e6 / secs, stats.records_read as f64 / secs, before, after)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mut mb = if bench { 256 } else { 4 };
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == "--mb" {
            mb = it.next().and_then(|v| v.parse().ok()).expect("--mb N");
        }
    }
    println!("| cleaning one pass | log before (MB) | after (MB) | log read MB/s | records/s |");
    println!("|---|---|---|---|---|");
    for (name, c) in [("uncompressed", Compression::None), ("lz4", Compression::Lz4)] {
        let (rate, records, before, after) = cleaning_throughput(mb, c);
        println!("| {name}, 100 B values, {KEYS} keys | {before:.0} | {after:.1} | {rate:.0} | {records:.0} |");
    }

    // Produce latency with the cleaner idle, then while it cleans.
    let broker = ferrite::testing::EmbeddedBroker::start_with(&[("log.cleaner.enable", "false")]);
    let bs = broker.bootstrap();
    let p = harness::producer(&bs, "1", "5");
    let total = (mb << 20) / 130;
    for i in 0..total {
        let key = format!("key-{:06}", i % KEYS);
        let v = value(i);
        harness::send(&p, BaseRecord::<[u8], [u8]>::to("compacted").partition(0).key(key.as_bytes()).payload(&v[..]));
    }
    p.flush(Duration::from_secs(300)).unwrap();
    let state = broker.broker().state().clone();
    let compacted = state.logs.partition("compacted", 0).unwrap();
    let overrides = [("cleanup.policy".to_string(), "compact".to_string())].into_iter().collect();
    // Through the metadata log, as AlterConfigs does: the local logs follow it.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(state.topic_admin.alter_topic_config("compacted", overrides, false)).unwrap();
    compacted.log().roll(ferrite::time::now_ms()).unwrap();
    let (secs, rate) = (if bench { 5 } else { 1 }, 2_000);
    let idle = harness::latency(&bs, "latency-idle", rate, secs);
    let cleaning = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2200)); // the latency run is sending by now
        let start = Instant::now();
        let stats = state.cleaner.clean_once().unwrap().expect("the compacted topic is dirty");
        (start.elapsed(), stats)
    });
    let busy = harness::latency(&bs, "latency-cleaning", rate, secs);
    let (took, stats) = cleaning.join().unwrap();
    println!();
    println!("| end-to-end latency, {rate} records/s of 100 B | p50 ms | p99 ms | p99.9 ms |");
    println!("|---|---|---|---|");
    for (name, lat) in [("cleaner idle", &idle), ("while cleaning", &busy)] {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", harness::pct(lat, 0.5), harness::pct(lat, 0.99), harness::pct(lat, 0.999));
    }
    println!();
    println!(
        "the pass cleaned {:.0} MB in {:.1} s ({:.0} MB/s) while the latency run went on",
        stats.bytes_read as f64 / 1e6,
        took.as_secs_f64(),
        stats.bytes_read as f64 / 1e6 / took.as_secs_f64()
    );
}
