//! Load generator on librdkafka (rdkafka crate): produce and consume throughput for
//! 100-byte and 1 KiB records, and end-to-end latency percentiles at a fixed rate.
//!
//!   cargo bench --bench load -- --bootstrap 127.0.0.1:9092 [--records N] [--rate R]
//!
//! Without --bootstrap it starts an in-process broker (client and broker then share the
//! process as well as the machine). Under `cargo test` (no `--bench` argument) it runs as
//! a short smoke test of the harness, with small counts.

#[path = "harness/mod.rs"]
mod harness;

use harness::{consumer, drain, latency, pct, producer, send};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::Offset;
use std::time::{Duration, Instant};

struct Args {
    bootstrap: Option<String>,
    records: usize,
    rate: u64,
    acks: String,
    secs: u64,
}

fn args() -> Args {
    let mut a = Args { bootstrap: None, records: 2_000_000, rate: 20_000, acks: "1".into(), secs: 5 };
    if !std::env::args().any(|f| f == "--bench") {
        (a.records, a.rate, a.secs) = (20_000, 2_000, 1);
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = it.next(),
            "--records" => a.records = it.next().and_then(|v| v.parse().ok()).expect("--records N"),
            "--rate" => a.rate = it.next().and_then(|v| v.parse().ok()).expect("--rate R"),
            "--acks" => a.acks = it.next().expect("--acks 0|1|all"),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn produce(bs: &str, topic: &str, n: usize, size: usize, acks: &str) -> Duration {
    let p = producer(bs, acks, "5");
    let payload = vec![b'x'; size];
    let start = Instant::now();
    for _ in 0..n {
        send(&p, BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]));
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    start.elapsed()
}

fn consume(bs: &str, topic: &str, n: usize) -> Duration {
    let c = consumer(bs, topic, Offset::Beginning);
    drain(&c, n, Duration::from_secs(300))
}

fn main() {
    let a = args();
    let _embedded;
    let bs = match &a.bootstrap {
        Some(b) => b.clone(),
        None => {
            _embedded = ferrite::testing::EmbeddedBroker::start();
            _embedded.bootstrap()
        }
    };
    let run = std::process::id();
    println!("| scenario | records | produce rec/s | produce MB/s | consume rec/s | consume MB/s |");
    println!("|---|---|---|---|---|---|");
    for size in [100usize, 1024] {
        let n = if size == 100 { a.records } else { a.records / 4 };
        let topic = format!("bench-{run}-{size}");
        let pt = produce(&bs, &topic, n, size, &a.acks).as_secs_f64();
        let ct = consume(&bs, &topic, n).as_secs_f64();
        let mb = (n * size) as f64 / 1e6;
        println!(
            "| {size} B, 1 partition, acks={} | {n} | {:.0} | {:.0} | {:.0} | {:.0} |",
            a.acks,
            n as f64 / pt,
            mb / pt,
            n as f64 / ct,
            mb / ct
        );
    }
    let lat = latency(&bs, &format!("bench-{run}-latency"), a.rate, a.secs);
    assert!(!lat.is_empty(), "no record made it through");
    println!();
    println!("end-to-end latency at {} records/s of 100 B ({} samples): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        a.rate, lat.len(), pct(&lat, 0.50), pct(&lat, 0.99), pct(&lat, 0.999));
}
