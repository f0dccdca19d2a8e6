//! Criterion benchmarks of the functions every produced byte or fetch passes through:
//!
//!   cargo bench --bench hot_paths
//!
//! - `validate_produced`: what the produce path does per batch (CRC-32C over the batch,
//!   a walk over the records' varint framing for offsets and the max timestamp);
//! - `Log::append`: validation done, one batch written to the active segment (page
//!   cache) with its index entries;
//! - `Log::read`: the fetch path's lookup of a file range for an offset (offset index,
//!   then a scan of batch headers from the indexed position).
//!
//! Under `cargo test` each runs once, as a smoke.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferrite::config::LogConfig;
use ferrite::storage::batch::validate_produced;
use ferrite::storage::log::{LoadOptions, Log};
use ferrite::testing::records::{self, record};
use kafka_protocol::records::Compression;

/// One uncompressed batch of `n` records of `size` bytes, as a producer sends it.
fn batch(n: usize, size: usize) -> BytesMut {
    let value = Bytes::from(vec![b'x'; size]);
    let records: Vec<_> = (0..n as i64).map(|i| record(i, 1_700_000_000_000 + i, None, Some(value.clone()))).collect();
    records::batch(&records, Compression::None)
}

fn open_log(dir: &std::path::Path) -> Log {
    let opts = LoadOptions::fresh(ferrite::time::now_ms());
    Log::open(dir, LogConfig::default(), opts).unwrap()
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_produced");
    for (n, size) in [(9_000, 100), (900, 1024)] {
        let b = batch(n, size);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(format!("{n} records of {size} B"), |bench| bench.iter(|| validate_produced(&b, usize::MAX).unwrap()));
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("Log::append");
    for (n, size) in [(1, 100), (100, 100), (900, 1024)] {
        let b = batch(n, size);
        let h = validate_produced(&b, usize::MAX).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut log = open_log(dir.path());
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(format!("batch of {n} × {size} B"), |bench| {
            bench.iter(|| log.append(&[(&b[..], h)], 0).unwrap());
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let b = batch(100, 100);
    let h = validate_produced(&b, usize::MAX).unwrap();
    let batches = 20_000; // 2 M records, ~220 MB
    for _ in 0..batches {
        log.append(&[(&b[..], h)], 0).unwrap();
    }
    let end = log.next_offset();
    let mut g = c.benchmark_group("Log::read");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    g.bench_function("1 MB from a random offset of 2 M", |bench| {
        bench.iter_batched(
            || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % end as u64) as i64
            },
            |offset| log.read(offset, 1 << 20, true).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, validate, append, read);
criterion_main!(benches);
