//! Produce and fetch through librdkafka (rdkafka crate) against an in-process broker:
//! byte-identical round trips for every codec, many partitions, concurrent producers,
//! offsets by timestamp, and the zero-copy fetch path.

mod common;

use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

fn value(i: usize) -> Vec<u8> {
    // Compressible but not constant, of varying length.
    format!("value-{i}-{}", "x".repeat(i % 300)).into_bytes()
}

#[test]
fn round_trip_every_codec_byte_identical() {
    let _covers = covers(LIBRDKAFKA, &["round_trip", "codecs"]);
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&bs, &topic, 3, &[]);
        let p = producer(&bs, &[("compression.codec", codec)]);
        let n = 3000;
        let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key-{i}").into_bytes()).collect();
        let values: Vec<Vec<u8>> = (0..n).map(value).collect();
        let base_ts = 1_700_000_000_000i64;
        let records = (0..n)
            .map(|i| {
                BaseRecord::to(&topic)
                    .partition((i % 3) as i32)
                    .key(&keys[i][..])
                    .payload(&values[i][..])
                    .timestamp(base_ts + i as i64)
                    .headers(OwnedHeaders::new().insert(Header { key: "h", value: Some(&keys[i][..]) }))
            })
            .collect();
        produce_all(&p, records);
        let got = consume(&bs, &topic, &[0, 1, 2], Offset::Beginning, n, Duration::from_secs(30));
        assert_eq!(got.len(), n, "{codec}: every record read back");
        let mut next_offset = BTreeMap::new();
        for g in &got {
            let i: usize = std::str::from_utf8(g.key.as_ref().unwrap()).unwrap()[4..].parse().unwrap();
            assert_eq!(g.partition, (i % 3) as i32, "{codec}");
            assert_eq!(g.value.as_deref(), Some(&values[i][..]), "{codec}: value of {i}");
            assert_eq!(g.timestamp, Some(base_ts + i as i64), "{codec}: timestamp of {i}");
            assert_eq!(g.headers, vec![("h".to_string(), Some(keys[i].clone()))], "{codec}");
            // Offsets are dense and in order within each partition, and follow send order.
            let expect = next_offset.entry(g.partition).or_insert(0i64);
            assert_eq!(g.offset, *expect, "{codec}: offsets in order");
            assert_eq!(i / 3, g.offset as usize, "{codec}: record {i} at its send position");
            *expect += 1;
        }
    }
}

#[test]
fn concurrent_producers_many_partitions() {
    let _covers = covers(LIBRDKAFKA, &["partitions"]);
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    let partitions = 24;
    create_topic(&bs, "wide", partitions, &[]);
    let per_producer = 2500;
    std::thread::scope(|s| {
        for w in 0..4 {
            let bs = bs.clone();
            s.spawn(move || {
                let p = producer(&bs, &[("linger.ms", "2")]);
                let keys: Vec<String> = (0..per_producer).map(|i| format!("{w}:{i}")).collect();
                let records = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| BaseRecord::to("wide").partition((i % 24) as i32).key(k.as_bytes()).payload(k.as_bytes()))
                    .collect();
                produce_all(&p, records);
            });
        }
    });
    let all: Vec<i32> = (0..partitions).collect();
    let got = consume(&bs, "wide", &all, Offset::Beginning, 4 * per_producer, Duration::from_secs(30));
    assert_eq!(got.len(), 4 * per_producer);
    // Each producer's records keep their order within a partition.
    let mut last: BTreeMap<(i32, String), usize> = BTreeMap::new();
    for g in &got {
        let k = String::from_utf8(g.key.clone().unwrap()).unwrap();
        let (w, i) = k.split_once(':').unwrap();
        let i: usize = i.parse().unwrap();
        if let Some(prev) = last.insert((g.partition, w.to_string()), i) {
            assert!(i > prev, "order kept for producer {w} in partition {}", g.partition);
        }
    }
    let distinct: std::collections::BTreeSet<_> = got.iter().map(|g| g.key.clone()).collect();
    assert_eq!(distinct.len(), 4 * per_producer, "no duplicates");
}

#[test]
fn offsets_for_times_finds_the_first_record_at_or_after() {
    let _covers = covers(LIBRDKAFKA, &["by_time"]);
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "times", 1, &[]);
    for codec in ["none", "lz4"] {
        let p = producer(&bs, &[("compression.codec", codec), ("linger.ms", "50")]);
        let base = if codec == "none" { 1_000_000 } else { 2_000_000 };
        let records = (0..500i64).map(|i| BaseRecord::to("times").payload(&b"v"[..]).key(&b"k"[..]).timestamp(base + i * 10)).collect();
        produce_all(&p, records);
    }
    let c = consumer(&bs, &[]);
    for (ts, want) in [(1_000_000, 0), (1_000_005, 1), (1_002_000, 200), (1_004_990, 499), (1_004_991, 500), (2_000_000, 500), (2_001_234, 624), (9_000_000, -1)] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(ts)).unwrap();
        let res = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        let off = res.find_partition("times", 0).unwrap().offset();
        let want = if want < 0 { Offset::End } else { Offset::Offset(want) };
        assert_eq!(off, want, "timestamp {ts}");
    }
    let (low, high) = c.fetch_watermarks("times", 0, Duration::from_secs(10)).unwrap();
    assert_eq!((low, high), (0, 1000));
}

#[test]
fn large_fetch_goes_through_sendfile() {
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "big", 1, &[]);
    let p = producer(&bs, &[("linger.ms", "20"), ("batch.size", "1000000")]);
    let payload = vec![7u8; 1024];
    let n = 20_000;
    produce_all(&p, (0..n).map(|_| BaseRecord::<[u8], [u8]>::to("big").payload(&payload[..])).collect());
    let before = broker.broker().metrics().sendfile_bytes();
    let got = consume(&bs, "big", &[0], Offset::Beginning, n, Duration::from_secs(30));
    assert_eq!(got.len(), n);
    assert!(got.iter().all(|g| g.value.as_deref() == Some(&payload[..])));
    let sent = broker.broker().metrics().sendfile_bytes() - before;
    assert!(sent >= (n * 1024) as u64, "record bytes went through sendfile: {sent}");
    assert_eq!(broker.broker().metrics().copied_record_bytes(), 0);
}

#[test]
fn log_append_time_topic_stamps_broker_time() {
    use rdkafka::message::Timestamp;
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "appendtime", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let before = ferrite::time::now_ms();
    for codec in ["none", "zstd"] {
        let p = producer(&bs, &[("compression.codec", codec)]);
        produce_all(&p, (0..200).map(|i| BaseRecord::<[u8], [u8]>::to("appendtime").payload(&b"v"[..]).timestamp(1000 + i)).collect());
    }
    let after = ferrite::time::now_ms();
    // The consumer checks every batch's CRC (check.crcs): the rewritten CRC must be right.
    let c = consumer(&bs, &[("check.crcs", "true")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("appendtime", 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while n < 400 && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("no CRC or consume error");
            match rdkafka::Message::timestamp(&m) {
                Timestamp::LogAppendTime(t) => assert!((before..=after).contains(&t), "{t} not in [{before}, {after}]"),
                other => panic!("expected LogAppendTime, got {other:?}"),
            }
            n += 1;
        }
    }
    assert_eq!(n, 400);
}

#[test]
fn long_poll_fetch_is_woken_by_an_append() {
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "longpoll", 1, &[]);
    // The consumer's fetches wait up to 10 s for data: only a wake-up on append can deliver
    // a record in well under that.
    let c = consumer(&bs, &[("fetch.wait.max.ms", "10000"), ("fetch.min.bytes", "1")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("longpoll", 0, Offset::Offset(0)).unwrap();
    c.assign(&tpl).unwrap();
    assert!(c.poll(Duration::from_millis(1500)).is_none(), "nothing to read yet; a fetch is now parked");
    let p = producer(&bs, &[("linger.ms", "0")]);
    let sent = std::time::Instant::now();
    produce_all(&p, vec![BaseRecord::<[u8], [u8]>::to("longpoll").payload(&b"wake"[..])]);
    let m = c.poll(Duration::from_secs(5)).expect("record delivered").expect("no error");
    let waited = sent.elapsed();
    assert_eq!(rdkafka::Message::payload(&m), Some(&b"wake"[..]));
    assert!(waited < Duration::from_secs(2), "woken by the append, not the 10 s timeout: {waited:?}");
}

/// The codec of every batch stored in partition 0 of `topic`.
fn stored_codecs(broker: &EmbeddedBroker, topic: &str) -> Vec<i16> {
    use std::os::unix::fs::FileExt;
    let part = broker.broker().state().logs.partition(topic, 0).unwrap();
    let (slice, _) = part.read(0, 1 << 24, true).unwrap();
    let slice = slice.unwrap();
    let mut buf = vec![0u8; slice.len as usize];
    slice.file.read_exact_at(&mut buf, slice.position).unwrap();
    ferrite::storage::batch::split_batches(&buf).unwrap().iter().map(|b| ferrite::storage::batch::BatchHeader::parse(b).unwrap().compression()).collect()
}

#[test]
fn a_topic_compression_type_recompresses_what_producers_send() {
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "as-sent", 1, &[]);
    create_topic(&bs, "gzipped", 1, &[("compression.type", "gzip")]);
    let p = producer(&bs, &[("compression.type", "lz4"), ("enable.idempotence", "true")]);
    for topic in ["as-sent", "gzipped"] {
        produce_all(&p, (0..200).map(|i| BaseRecord::to(topic).partition(0).key(&b"k"[..]).payload(&b"some value"[..]).timestamp(1_000 + i)).collect());
    }
    assert!(stored_codecs(&broker, "as-sent").iter().all(|c| *c == 3), "compression.type=producer keeps lz4");
    assert!(stored_codecs(&broker, "gzipped").iter().all(|c| *c == 1), "compression.type=gzip stores gzip");
    let got = consume(&bs, "gzipped", &[0], Offset::Beginning, 200, Duration::from_secs(10));
    assert_eq!(got.len(), 200);
    assert!(got.iter().enumerate().all(|(i, g)| g.offset == i as i64 && g.timestamp == Some(1_000 + i as i64) && g.value.as_deref() == Some(&b"some value"[..])));
    // Batches stay deduplicated after recompression: the producer's sequence is kept.
    let part = broker.broker().state().logs.partition("gzipped", 0).unwrap();
    let log = part.log();
    let state = log.producer_state().active();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].1.batches.back().unwrap().last_seq, 199);
}
