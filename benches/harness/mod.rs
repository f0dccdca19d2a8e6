//! What the benchmarks share: librdkafka clients tuned for throughput, and end-to-end
//! latency at a fixed offered rate.
#![allow(dead_code)]

pub mod perf_tool;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Extra client settings from the command line (`--producer-set k=v`, `--consumer-set
/// k=v`), applied last, the same for every broker under test.
pub static PRODUCER_SET: OnceLock<Vec<(String, String)>> = OnceLock::new();
pub static CONSUMER_SET: OnceLock<Vec<(String, String)>> = OnceLock::new();

fn with_extra(mut cfg: ClientConfig, extra: &OnceLock<Vec<(String, String)>>) -> ClientConfig {
    for (k, v) in extra.get().map(Vec::as_slice).unwrap_or(&[]) {
        cfg.set(k, v);
    }
    cfg
}

/// Parses `key=value` for `--producer-set` / `--consumer-set`.
pub fn parse_setting(kv: &str) -> (String, String) {
    let (k, v) = kv.split_once('=').expect("a client setting is key=value");
    (k.to_string(), v.to_string())
}

/// Sends one record, waiting out a full local queue (QueueFull) by polling.
pub fn send(p: &BaseProducer, mut rec: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, back)) => {
                rec = back;
                p.poll(Duration::from_millis(1));
            }
        }
    }
}

pub fn producer(bs: &str, acks: &str, linger: &str) -> BaseProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bs)
        .set("acks", acks)
        .set("linger.ms", linger)
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2000000")
        .set("enable.idempotence", "false");
    with_extra(cfg, &PRODUCER_SET).create().expect("producer")
}

/// A consumer tuned for throughput (the harness's settings, then `--consumer-set`).
pub fn consumer_config(bs: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bs)
        .set("group.id", "ferrite-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.max.messages.kbytes", "1048576")
        // One 10 MB fetch of 100-byte records is 100,000 messages; at librdkafka's default
        // queued.min.messages (100,000) the fetcher would back off fetch.queue.backoff.ms.
        .set("queued.min.messages", "10000000");
    cfg
}

pub fn consumer(bs: &str, topic: &str, from: Offset) -> BaseConsumer {
    let mut cfg = consumer_config(bs);
    cfg.set("fetch.wait.max.ms", "5");
    let c: BaseConsumer = with_extra(cfg, &CONSUMER_SET).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, from).unwrap();
    c.assign(&tpl).unwrap();
    c
}

/// Sends `rate` records/s for `secs` seconds, each stamped with its send time, and
/// measures when a consumer sees it.
/// A throughput consumer (`consumer_config` with `--consumer-set` applied).
pub fn throughput_consumer(bs: &str) -> BaseConsumer {
    with_extra(consumer_config(bs), &CONSUMER_SET).create().expect("consumer")
}

pub fn latency(bs: &str, topic: &str, rate: u64, secs: u64) -> Vec<Duration> {
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
    let mut payload = [0u8; 100];
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

pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}
