//! Restarts, crashes and the segment lifecycle, through librdkafka: data acknowledged is
//! still there after a clean restart, after an in-process crash, and after `kill -9` of a
//! real `ferrite` process under a produce storm with flush-on-ack; segments roll and
//! retention deletes old ones while clients keep working.

mod common;

use common::process::{free_port, Ferrite, TempDir};
use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn payloads(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

#[test]
fn clean_restart_and_crash_keep_acknowledged_data() {
    let mut broker = EmbeddedBroker::start_with(&[("log.segment.bytes", "65536")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "durable", 2, &[("retention.ms", "-1")]);
    let first = payloads(5000, "a");
    let p = producer(&bs, &[("acks", "all")]);
    produce_all(&p, first.iter().enumerate().map(|(i, v)| BaseRecord::to("durable").partition((i % 2) as i32).payload(&v[..])).collect());
    drop(p);
    broker.restart().unwrap();
    let got = consume(&bs, "durable", &[0, 1], Offset::Beginning, 5000, Duration::from_secs(30));
    assert_eq!(got.len(), 5000, "everything back after a clean restart");
    // Append more after the restart, then crash (no clean shutdown) and recover.
    let p = producer(&bs, &[("acks", "all")]);
    let second = payloads(3000, "b");
    produce_all(&p, second.iter().map(|v| BaseRecord::to("durable").partition(0).payload(&v[..])).collect());
    drop(p);
    broker.crash_and_restart().unwrap();
    let got = consume(&bs, "durable", &[0], Offset::Beginning, 2500 + 3000, Duration::from_secs(30));
    assert_eq!(got.len(), 5500);
    assert!(got.iter().enumerate().all(|(i, g)| g.offset == i as i64));
    assert_eq!(got.last().unwrap().value.as_deref(), Some(&b"b-2999"[..]));
    // The log still takes appends at the right offset.
    let p = producer(&bs, &[]);
    produce_all(&p, vec![BaseRecord::to("durable").partition(0).payload(&b"after"[..])]);
    let c = consumer(&bs, &[]);
    assert_eq!(c.fetch_watermarks("durable", 0, Duration::from_secs(10)).unwrap(), (0, 5501));
}

#[test]
fn segments_roll_and_retention_deletes_old_ones() {
    let broker = EmbeddedBroker::start_with(&[
        ("log.segment.bytes", "20000"),
        ("log.retention.check.interval.ms", "200"),
    ]);
    let bs = broker.bootstrap();
    create_topic(&bs, "rolling", 1, &[("retention.bytes", "60000")]);
    let p = producer(&bs, &[("linger.ms", "0"), ("batch.num.messages", "10")]);
    let v = vec![1u8; 500];
    produce_all(&p, (0..1000).map(|_| BaseRecord::<[u8], [u8]>::to("rolling").payload(&v[..])).collect());
    let dir = broker.data_dir().join("rolling-0");
    let count_logs = || std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log")).count();
    // Retention runs every 200 ms: wait for it to cut the log down.
    let c = consumer(&bs, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Retention may take several passes; wait until the log start has stayed put for
    // three passes, so the reads below race no deletion.
    let (mut low, mut logs, mut stable_since) = (0, usize::MAX, Instant::now());
    while Instant::now() < deadline {
        let now_low = c.fetch_watermarks("rolling", 0, Duration::from_secs(5)).unwrap().0;
        if now_low != low {
            (low, stable_since) = (now_low, Instant::now());
        }
        logs = count_logs();
        if low > 0 && logs <= 6 && stable_since.elapsed() >= Duration::from_millis(600) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(low > 0, "retention moved the log start offset");
    assert!((2..=6).contains(&logs), "segments rolled and old ones were deleted: {logs}");
    // A consumer starting at the beginning lands on the new log start and reads on.
    let got = consume(&bs, "rolling", &[0], Offset::Beginning, (1000 - low) as usize, Duration::from_secs(20));
    assert_eq!(got.first().map(|g| g.offset), Some(low));
    assert_eq!(got.last().map(|g| g.offset), Some(999));
    // Reading below the log start is OFFSET_OUT_OF_RANGE, which the client resets from.
    let got = consume_with(&bs, &[("auto.offset.reset", "earliest")], "rolling", &[0], Offset::Offset(0), 1, Duration::from_secs(20));
    assert!(got.first().is_some_and(|g| g.offset >= low), "reset to a valid offset");
    produce_all(&p, vec![BaseRecord::<[u8], [u8]>::to("rolling").payload(&v[..])]);
}

/// Collects the payloads whose delivery the broker acknowledged.
struct Acked(Arc<Mutex<Vec<Vec<u8>>>>);
impl ClientContext for Acked {}
impl ProducerContext for Acked {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            self.0.lock().unwrap().push(m.payload().unwrap().to_vec());
        }
    }
}

const FLUSH_ON_ACK: [(&str, &str); 2] = [("log.flush.interval.messages", "1"), ("log.segment.bytes", "200000")];

#[test]
fn kill_9_during_produce_storm_loses_no_acknowledged_record() {
    let dir = TempDir::new("kill9");
    let port = free_port();
    let broker = Ferrite::start(&dir.0, port, &FLUSH_ON_ACK);
    let bs = broker.bootstrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let p: ThreadedProducer<Acked> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .set("allow.auto.create.topics", "true")
        .create_with_context(Acked(acked.clone()))
        .unwrap();
    let start = Instant::now();
    let mut sent = 0u64;
    // Produce until a good number of records are acknowledged, then kill -9 mid-stream.
    while acked.lock().unwrap().len() < 20_000 && start.elapsed() < Duration::from_secs(60) {
        let v = format!("r-{sent}");
        if p.send(BaseRecord::<[u8], [u8]>::to("storm").payload(v.as_bytes())).is_ok() {
            sent += 1;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    broker.kill9();
    let acked_now: Vec<Vec<u8>> = acked.lock().unwrap().clone();
    assert!(acked_now.len() >= 20_000, "the storm was acknowledged before the kill");
    drop(p);
    let _broker = Ferrite::start(&dir.0, port, &FLUSH_ON_ACK);
    let got = consume(&bs, "storm", &[0], Offset::Beginning, acked_now.len(), Duration::from_secs(60));
    let have: std::collections::HashSet<Vec<u8>> = got.iter().filter_map(|g| g.value.clone()).collect();
    let missing = acked_now.iter().filter(|v| !have.contains(*v)).count();
    assert_eq!(missing, 0, "acknowledged records lost after kill -9");
    assert!(got.iter().enumerate().all(|(i, g)| g.offset == i as i64), "dense offsets after recovery");
}
