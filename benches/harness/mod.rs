//! What the benchmarks share: librdkafka clients tuned for throughput, and end-to-end
//! latency at a fixed offered rate.
#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

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

pub fn consumer(bs: &str, topic: &str, from: Offset) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "ferrite-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.wait.max.ms", "5")
        // Past queued.min.messages (100,000 by default: one 10 MB fetch of 100-byte
        // records) librdkafka's fetcher backs off fetch.queue.backoff.ms (1 s).
        .set("queued.min.messages", "10000000")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, from).unwrap();
    c.assign(&tpl).unwrap();
    c
}

/// Sends `rate` records/s for `secs` seconds, each stamped with its send time, and
/// measures when a consumer sees it.
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
