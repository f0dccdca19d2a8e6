//! The log as a crash-happy machine, a flipped bit, a second broker and concurrent admin
//! calls would have it: every intact acknowledged record is still served at its offset,
//! no offset is handed out twice, and a broker that cannot keep its promises refuses to
//! start instead of serving.

mod common;

use common::process::{free_port, run_expecting_exit, Ferrite, TempDir};
use common::raw::call;
use common::*;
use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// (base offset, last offset, position) of every batch in a segment file.
fn batches(path: &Path) -> Vec<(i64, i64, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 61 <= bytes.len() {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap()) as i64;
        out.push((base, base + delta, pos));
        pos += 12 + len;
    }
    out
}

fn flip(path: &Path, pos: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[pos] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

fn produce_numbered(bs: &str, topic: &str, n: usize) {
    let p = producer(bs, &[("acks", "all"), ("linger.ms", "5"), ("batch.num.messages", "40")]);
    let values: Vec<String> = (0..n).map(|i| format!("value-{i:06}")).collect();
    produce_all(&p, values.iter().map(|v| BaseRecord::to(topic).partition(0).payload(v.as_bytes())).collect());
}

/// offset → value of everything the partition serves from the beginning.
fn served(bs: &str, topic: &str, expect: usize) -> BTreeMap<i64, Vec<u8>> {
    consume(bs, topic, &[0], Offset::Beginning, expect, Duration::from_secs(60))
        .into_iter()
        .map(|g| (g.offset, g.value.unwrap_or_default()))
        .collect()
}

#[test]
fn a_flipped_byte_in_an_old_segment_after_kill_9_costs_only_its_batch() {
    let dir = TempDir::new("flip");
    let port = free_port();
    let f = Ferrite::start(&dir.0, port, &[("log.segment.bytes", "16384")]);
    let bs = f.bootstrap();
    create_topic(&bs, "flip", 1, &[]);
    produce_numbered(&bs, "flip", 20_000);
    let before = served(&bs, "flip", 20_000);
    assert_eq!(before.len(), 20_000, "all acknowledged");
    f.kill9();
    let pdir = dir.0.join("flip-0");
    let segments = segment_files(&pdir);
    assert!(segments.len() > 10, "{} segments", segments.len());
    // Segment 0 is above the recovery point (no checkpoint yet): recovery re-reads it.
    let (base, last, pos) = batches(&segments[0])[5];
    flip(&segments[0], pos + 61 + 7, 0x20);
    let f = Ferrite::start(&dir.0, port, &[("log.segment.bytes", "16384")]);
    let bs = f.bootstrap();
    let lost = (last - base + 1) as usize;
    let after = served(&bs, "flip", 20_000 - lost);
    let expected: BTreeMap<i64, Vec<u8>> = before.into_iter().filter(|(o, _)| !(base..=last).contains(o)).collect();
    assert_eq!(after.len(), expected.len(), "every intact acknowledged record is served");
    assert!(after == expected, "each at its own offset");
    assert_eq!(segment_files(&pdir).len(), segments.len(), "no later segment was deleted");
    // The next record gets the next offset: none is handed out again.
    produce_all(&producer(&bs, &[("acks", "all")]), vec![BaseRecord::to("flip").partition(0).payload(&b"next"[..])]);
    assert_eq!(consumer(&bs, &[]).fetch_watermarks("flip", 0, Duration::from_secs(10)).unwrap(), (0, 20_001));
}

/// The recovery point written to `recovery-point-offset-checkpoint` for `topic`-0.
fn checkpointed_recovery_point(dir: &Path, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("recovery-point-offset-checkpoint")).ok()?;
    text.lines().skip(2).find_map(|l| l.strip_prefix(&format!("{topic} 0 ")).and_then(|o| o.parse().ok()))
}

#[test]
fn rolled_segments_are_flushed_and_a_restart_rereads_only_the_rest() {
    let dir = TempDir::new("rp");
    let port = free_port();
    let cfg = [("log.segment.bytes", "16384"), ("log.flush.offset.checkpoint.interval.ms", "200")];
    let f = Ferrite::start(&dir.0, port, &cfg);
    let bs = f.bootstrap();
    create_topic(&bs, "rp", 1, &[]);
    produce_numbered(&bs, "rp", 20_000);
    let pdir = dir.0.join("rp-0");
    let newest_base = |segments: &[std::path::PathBuf]| -> i64 {
        segments.last().unwrap().file_stem().unwrap().to_str().unwrap().parse().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let rp = loop {
        let rp = checkpointed_recovery_point(&dir.0, "rp").unwrap_or(0);
        if rp >= newest_base(&segment_files(&pdir)) || Instant::now() > deadline {
            break rp;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let segments = segment_files(&pdir);
    assert!(segments.len() > 10);
    assert_eq!(rp, newest_base(&segments), "the recovery point reached the active segment's base");
    f.kill9();
    // Below the recovery point nothing is re-read: a flipped byte there goes unnoticed by
    // recovery (re-reading would cut the batch out and keep a `.corrupted-*` copy) and is
    // served as stored, as Kafka serves it, for the client's CRC check to report.
    let (_, _, pos) = batches(&segments[0])[5];
    flip(&segments[0], pos + 61 + 7, 0x20);
    let f = Ferrite::start(&dir.0, port, &cfg);
    let corrupted = std::fs::read_dir(&pdir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupted-")).count();
    assert_eq!(corrupted, 0, "segment 0 was not recovered again");
    assert_eq!(served(&f.bootstrap(), "rp", 20_000).len(), 20_000);
}

#[test]
fn after_an_unclean_start_the_recovered_segments_are_checkpointed_at_once() {
    let dir = TempDir::new("rp-again");
    let port = free_port();
    // Kafka's default checkpoint interval (60 s): the broker is killed long before it.
    let cfg = [("log.segment.bytes", "16384")];
    let f = Ferrite::start(&dir.0, port, &cfg);
    create_topic(&f.bootstrap(), "again", 1, &[]);
    produce_numbered(&f.bootstrap(), "again", 20_000);
    f.kill9();
    assert_eq!(checkpointed_recovery_point(&dir.0, "again").unwrap_or(0), 0, "no checkpoint was due before the crash");
    let f = Ferrite::start(&dir.0, port, &cfg);
    let deadline = Instant::now() + Duration::from_secs(5);
    let newest = segment_files(&dir.0.join("again-0")).last().unwrap().file_stem().unwrap().to_str().unwrap().parse::<i64>().unwrap();
    while checkpointed_recovery_point(&dir.0, "again").unwrap_or(0) < newest {
        assert!(Instant::now() < deadline, "the recovered segments' recovery point was not written within 5 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(f);
}

#[test]
fn a_fetch_across_a_flipped_batch_length_is_corrupt_message_not_other_records() {
    let broker = EmbeddedBroker::start_with(&[("log.segment.bytes", "1048576")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "len", 1, &[]);
    produce_numbered(&bs, "len", 3_000);
    let seg0 = broker.data_dir().join("len-0").join("00000000000000000000.log");
    let list = batches(&seg0);
    assert!(list.len() > 20);
    // A batch right after an index entry's start, so a fetch from a later offset walks it.
    let (_, last, pos) = list[3];
    flip(&seg0, pos + 10, 0x01); // the length field's third byte: +256 bytes
    let target = last + 5;
    let mut s = TcpStream::connect(&bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        kafka_protocol::messages::fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("len")))
            .with_partitions(vec![kafka_protocol::messages::fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(target)
                .with_partition_max_bytes(1 << 20)]),
    ]);
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &req);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 2, "CORRUPT_MESSAGE, not records from elsewhere");
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[test]
fn a_second_broker_on_the_same_log_dir_refuses_to_start() {
    let dir = TempDir::new("lock");
    let first = Ferrite::start(&dir.0, free_port(), &[]);
    let second_port = free_port();
    let out = run_expecting_exit(&dir.0, second_port, &[], Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another broker") && err.contains(".lock"), "{err}");
    assert!(TcpStream::connect(("127.0.0.1", second_port)).is_err(), "the second broker never listened");
    // The first one still serves; once it is gone (even by kill -9) the directory is free.
    create_topic(&first.bootstrap(), "still", 1, &[]);
    first.kill9();
    let again = Ferrite::start(&dir.0, free_port(), &[]);
    assert!(consumer(&again.bootstrap(), &[]).fetch_watermarks("still", 0, Duration::from_secs(10)).is_ok());
}

#[test]
fn listeners_that_are_not_plaintext_refuse_to_start() {
    for proto in ["SSL", "SASL_PLAINTEXT", "SASL_SSL"] {
        let dir = TempDir::new("listener");
        let port = free_port();
        let out = run_expecting_exit(&dir.0, port, &[("listeners", &format!("{proto}://127.0.0.1:{port}"))], Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{proto}: a configuration error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("listener {proto} ")) && err.contains("refusing to start"), "{proto}: {err}");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "{proto}: nothing listens");
    }
}

fn delete_records(bs: &str, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let mut s = TcpStream::connect(bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = DeleteRecordsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        kafka_protocol::messages::delete_records_request::DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![kafka_protocol::messages::delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)]),
    ]);
    let resp: DeleteRecordsResponse = call(&mut s, ApiKey::DeleteRecords, 1, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[test]
fn concurrent_delete_records_are_not_undone_by_kill_9() {
    const PARTITIONS: i32 = 16;
    let dir = TempDir::new("delrec");
    let port = free_port();
    let mut f = Ferrite::start(&dir.0, port, &[]);
    let bs = f.bootstrap();
    create_topic(&bs, "del", PARTITIONS, &[]);
    let p = producer(&bs, &[("acks", "all")]);
    let v = b"x".to_vec();
    produce_all(&p, (0..PARTITIONS * 200).map(|i| BaseRecord::to("del").partition(i % PARTITIONS).payload(&v[..])).collect());
    drop(p);
    for round in 1..=5i64 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(PARTITIONS as usize));
        let confirmed: Vec<(i32, i64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..PARTITIONS)
                .map(|part| {
                    let (bs, barrier) = (bs.clone(), barrier.clone());
                    scope.spawn(move || {
                        let offset = round * 30 + part as i64;
                        barrier.wait();
                        let (code, low) = delete_records(&bs, "del", part, offset);
                        assert_eq!((code, low), (0, offset), "partition {part}");
                        (part, low)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        f.kill9();
        f = Ferrite::start(&dir.0, port, &[]);
        let c = consumer(&f.bootstrap(), &[]);
        for (part, low) in confirmed {
            let (start, _) = c.fetch_watermarks("del", part, Duration::from_secs(10)).unwrap();
            assert!(start >= low, "round {round}: partition {part} came back with log start {start} below the confirmed {low}");
        }
    }
}

#[test]
fn delete_records_whose_checkpoint_cannot_be_written_is_not_answered_success() {
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "nock", 1, &[]);
    produce_all(&producer(&bs, &[]), (0..10).map(|_| BaseRecord::<[u8], [u8]>::to("nock").payload(&b"v"[..])).collect());
    // A directory where the checkpoint's temporary file goes: the write fails.
    std::fs::create_dir(broker.data_dir().join("log-start-offset-checkpoint.tmp")).unwrap();
    let (code, _) = delete_records(&bs, "nock", 0, 5);
    assert_eq!(code, 56, "KAFKA_STORAGE_ERROR");
    std::fs::remove_dir(broker.data_dir().join("log-start-offset-checkpoint.tmp")).unwrap();
    assert_eq!(delete_records(&bs, "nock", 0, 5), (0, 5), "a retry once the disk is fine succeeds");
}
