//! Log compaction with librdkafka: a compacted topic with many updates per key ends with
//! one value per key, read back by rdkafka; tombstones go after `delete.retention.ms`;
//! records without a key are refused; `__consumer_offsets` stays small under a steady
//! commit load and its offsets survive a restart after cleaning.

mod common;

use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FAST_CLEANER: &[(&str, &str)] = &[("log.cleaner.backoff.ms", "50")];

fn text(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8(b.clone()).unwrap())
}

/// Everything readable from the start of partition 0, as (key → value) in log order.
fn read_all(bs: &str, topic: &str, expect_at_least: usize) -> Vec<(String, Option<String>)> {
    let got = consume(bs, topic, &[0], Offset::Beginning, expect_at_least + 100_000, Duration::from_millis(1500));
    got.iter().map(|g| (text(&g.key).unwrap(), text(&g.value))).collect()
}

/// Waits until `check` holds for what a fresh consumer reads.
fn wait_for(bs: &str, topic: &str, what: &str, check: impl Fn(&[(String, Option<String>)]) -> bool) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = read_all(bs, topic, 0);
        if check(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what}: still {} records", got.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_every_key() {
    let broker = EmbeddedBroker::start_with(FAST_CLEANER);
    let bs = broker.bootstrap();
    create_topic(&bs, "compacted", 1, &[("cleanup.policy", "compact"), ("segment.bytes", "16384"), ("min.cleanable.dirty.ratio", "0.01"), ("segment.ms", "300")]);
    let p = producer(&bs, &[("compression.type", "lz4"), ("linger.ms", "5")]);
    let mut latest = BTreeMap::new();
    let mut records = Vec::new();
    for round in 0..60 {
        for k in 0..50 {
            let (key, value) = (format!("key-{k:02}"), format!("value-{round}-{k}"));
            latest.insert(key.clone(), Some(value.clone()));
            records.push((key, value));
        }
    }
    produce_all(&p, records.iter().map(|(k, v)| BaseRecord::to("compacted").partition(0).key(k.as_bytes()).payload(v.as_bytes())).collect());
    // A later append rolls the segment (segment.ms), so every update is in a closed one.
    std::thread::sleep(Duration::from_millis(400));
    produce_all(&p, vec![BaseRecord::to("compacted").partition(0).key(&b"zz-last"[..]).payload(&b"end"[..])]);
    latest.insert("zz-last".into(), Some("end".into()));
    let got = wait_for(&bs, "compacted", "one record per key", |got| got.len() == latest.len());
    let seen: BTreeMap<String, Option<String>> = got.into_iter().collect();
    assert_eq!(seen, latest, "each key's latest value, nothing else");
    assert_eq!(consumer(&bs, &[]).fetch_watermarks("compacted", 0, Duration::from_secs(5)).unwrap(), (0, 3001), "offsets are kept");
    assert!(broker.broker().state().cleaner.metrics().passes.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // A record without a key is refused on a compacted topic (INVALID_RECORD).
    assert_eq!(raw_produce_without_key(&broker), 87);
    assert_eq!(read_all(&bs, "compacted", 0).len(), latest.len(), "nothing was written");
}

/// Produces one keyless record through the protocol; returns the partition's error code.
fn raw_produce_without_key(broker: &EmbeddedBroker) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
    use ferrite::testing::records::{batch, record};
    use kafka_protocol::records::Compression;
    let buf = batch(&[record(0, 1, None, Some(bytes::Bytes::from_static(b"v")))], Compression::None);
    let req = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_static_str("compacted")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(buf.freeze()))])]);
    let mut s = std::net::TcpStream::connect(broker.broker().local_addrs()[0]).unwrap();
    let resp: ProduceResponse = raw::call(&mut s, ApiKey::Produce, 9, &req);
    resp.responses[0].partition_responses[0].error_code
}

#[test]
fn tombstones_disappear_after_delete_retention() {
    let broker = EmbeddedBroker::start_with(FAST_CLEANER);
    let bs = broker.bootstrap();
    create_topic(
        &bs,
        "tombstones",
        1,
        &[("cleanup.policy", "compact"), ("min.cleanable.dirty.ratio", "0.01"), ("segment.ms", "200"), ("delete.retention.ms", "1500")],
    );
    let p = producer(&bs, &[]);
    let mut records: Vec<BaseRecord<'_, [u8], [u8]>> = Vec::new();
    let keys: Vec<String> = (0..6).map(|k| format!("k{k}")).collect();
    for k in &keys {
        records.push(BaseRecord::to("tombstones").partition(0).key(k.as_bytes()).payload(b"v"));
    }
    produce_all(&p, records);
    let deletes: Vec<BaseRecord<'_, [u8], [u8]>> = keys[..3].iter().map(|k| BaseRecord::to("tombstones").partition(0).key(k.as_bytes())).collect();
    produce_all(&p, deletes);
    std::thread::sleep(Duration::from_millis(300));
    produce_all(&p, vec![BaseRecord::to("tombstones").partition(0).key(&b"zz"[..]).payload(&b"roll"[..])]);
    let started = Instant::now();
    // First the old values of deleted keys go; the tombstones are still readable.
    let got = wait_for(&bs, "tombstones", "deleted keys' values removed", |got| got.len() == 7);
    let tombstones: Vec<&String> = got.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k).collect();
    assert_eq!(tombstones, vec!["k0", "k1", "k2"], "tombstones kept for delete.retention.ms: {got:?}");
    // Then, past delete.retention.ms, the tombstones themselves.
    let got = wait_for(&bs, "tombstones", "tombstones removed", |got| got.len() == 4);
    assert!(started.elapsed() >= Duration::from_millis(1000), "not before their retention");
    let keys_left: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys_left, vec!["k3", "k4", "k5", "zz"]);
}

#[test]
fn consumer_offsets_stays_small_under_a_steady_commit_load() {
    let mut broker = EmbeddedBroker::start_with(&[
        ("log.cleaner.backoff.ms", "50"),
        ("offsets.topic.num.partitions", "1"),
        ("offsets.topic.segment.bytes", "16384"),
    ]);
    let bs = broker.bootstrap();
    create_topic(&bs, "work", 1, &[]);
    let c = consumer(&bs, &[("group.id", "steady")]);
    for i in 0..4000i64 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("work", 0, Offset::Offset(i)).unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
    drop(c);
    let part = broker.broker().state().logs.partition("__consumer_offsets", 0).unwrap();
    let written = part.offsets().high_watermark;
    assert!(written >= 4000, "every commit was written ({written})");
    let deadline = Instant::now() + Duration::from_secs(30);
    while part.log().size_bytes() > 64 * 1024 {
        assert!(Instant::now() < deadline, "__consumer_offsets still {} bytes", part.log().size_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
    // 4000 commits are ~400 KB uncleaned; the log holds little more than the latest.
    assert!(part.log().size_bytes() <= 64 * 1024);
    broker.restart().unwrap();
    let c = consumer(&broker.bootstrap(), &[("group.id", "steady")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("work", 0);
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    assert_eq!(committed.find_partition("work", 0).unwrap().offset(), Offset::Offset(3999), "the latest commit survives cleaning and a restart");
}
