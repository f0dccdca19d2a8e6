//! Load generator on librdkafka (rdkafka crate): produce and consume throughput for
//! 100-byte and 1 KiB records, and end-to-end latency percentiles at a fixed rate.
//!
//!   cargo bench --bench load -- --bootstrap 127.0.0.1:9092 [--records N] [--rate R]
//!
//! Without --bootstrap it starts an in-process broker (client and broker then share the
//! process as well as the machine). Under `cargo test` (no `--bench` argument) it runs as
//! a short smoke test of the harness, with small counts.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
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

fn producer(bs: &str, acks: &str, linger: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("acks", acks)
        .set("linger.ms", linger)
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2000000")
        .set("enable.idempotence", "false")
        .create()
        .expect("producer")
}

fn consumer(bs: &str, topic: &str, from: Offset) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "ferrite-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, from).unwrap();
    c.assign(&tpl).unwrap();
    c
}

fn produce(bs: &str, topic: &str, n: usize, size: usize, acks: &str) -> Duration {
    let p = producer(bs, acks, "5");
    let payload = vec![b'x'; size];
    let start = Instant::now();
    for _ in 0..n {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    start.elapsed()
}

fn consume(bs: &str, topic: &str, n: usize) -> Duration {
    let c = consumer(bs, topic, Offset::Beginning);
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            m.expect("consume");
            got += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "consume timed out at {got}");
    }
    start.elapsed()
}

/// Sends `rate` records/s for `secs` seconds, each stamped with its send time, and
/// measures when a consumer sees it.
fn latency(bs: &str, topic: &str, rate: u64, secs: u64) -> Vec<Duration> {
    let epoch = Instant::now();
    let total = (rate * secs) as usize;
    // One warm-up record creates the topic, so the consumer can start right after it.
    let p = producer(bs, "1", "0");
    p.send(BaseRecord::<[u8], [u8]>::to(topic).payload(&[0u8; 8][..])).map_err(|(e, _)| e).unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
    let consumer_thread = {
        let (bs, topic) = (bs.to_string(), topic.to_string());
        std::thread::spawn(move || {
            let c = consumer(&bs, &topic, Offset::Offset(1));
            let mut lat = Vec::with_capacity(total);
            let deadline = Instant::now() + Duration::from_secs(secs + 30);
            while lat.len() < total && Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    let sent = u64::from_be_bytes(m.payload().unwrap()[..8].try_into().unwrap());
                    lat.push(epoch.elapsed() - Duration::from_nanos(sent));
                }
            }
            lat
        })
    };
    std::thread::sleep(Duration::from_secs(2)); // consumer connected, its fetch parked
    let mut payload = vec![0u8; 100];
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        while Instant::now() < due {
            p.poll(Duration::from_micros(100));
        }
        payload[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
        let _ = p.send(BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]));
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let mut lat = consumer_thread.join().unwrap();
    lat.sort();
    lat
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
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
