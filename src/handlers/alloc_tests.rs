//! Issue 8's promises about the hot paths, checked by counting heap allocations: a
//! produce request allocates as often for a batch of 5,000 records as for one of 10 (no
//! allocation per record), and a fetch response as often for 1,000 batches as for one (no
//! allocation per batch). Requests go through `handlers::handle` as the connection task
//! calls it, on a current-thread runtime, so every allocation lands on this thread.

use super::{handle, Outcome};
use crate::alloc_guard::allocations;
use crate::broker_state::ConnectionInfo;
use crate::response_frame::Chunk;
use crate::{Broker, BrokerConfig};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use crate::testing::records::{self, record};
use kafka_protocol::records::Compression;

struct Harness {
    rt: tokio::runtime::Runtime,
    broker: Broker,
    conn: ConnectionInfo,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = [
            ("log.dirs", dir.path().to_str().unwrap()),
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("advertised.listeners", "PLAINTEXT://127.0.0.1:0"),
        ];
        let config = BrokerConfig::from_map(keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let broker = rt.block_on(Broker::start(config)).unwrap();
        let conn = ConnectionInfo { peer: "127.0.0.1:1".parse().unwrap(), listener: "PLAINTEXT".into() };
        Harness { rt, broker, conn, _dir: dir }
    }

    /// Creates topics the way clients do: Metadata with auto-creation.
    fn create(&self, topics: &[&'static str]) {
        let topics = topics.iter().map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(t))))).collect();
        let req = MetadataRequest::default().with_topics(Some(topics)).with_allow_auto_topic_creation(true);
        assert!(matches!(self.call(ApiKey::Metadata, 9, &req), Outcome::Respond(_)));
    }

    fn call<T: Encodable>(&self, key: ApiKey, version: i16, body: &T) -> Outcome {
        let frame = request(key, version, body);
        self.rt.block_on(handle(self.broker.state(), &self.conn, frame))
    }

    /// The fewest allocations one request made over a few runs (a background task of
    /// the broker may share a run).
    fn allocations_of<T: Encodable>(&self, key: ApiKey, version: i16, body: &T) -> u64 {
        (0..5)
            .map(|_| {
                let frame = request(key, version, body);
                let before = allocations();
                let out = self.rt.block_on(handle(self.broker.state(), &self.conn, frame));
                let n = allocations() - before;
                assert!(matches!(out, Outcome::Respond(_)), "{key:?} answered");
                drop(out);
                n
            })
            .min()
            .unwrap()
    }
}

fn request<T: Encodable>(key: ApiKey, version: i16, body: &T) -> BytesMut {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("alloc-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf
}

/// One uncompressed batch of `n` 100-byte records (asserted: one batch).
fn batch(n: usize) -> BytesMut {
    let value = Bytes::from(vec![b'v'; 100]);
    let records: Vec<_> = (0..n as i64).map(|i| record(i, 1_700_000_000_000 + i, None, Some(value.clone()))).collect();
    let buf = records::batch(&records, Compression::None);
    let header = crate::storage::batch::BatchHeader::parse(&buf).unwrap();
    assert_eq!((header.size, header.record_count as usize), (buf.len(), n), "one batch of {n} records");
    buf
}

fn produce(topic: &'static str, records: Bytes) -> ProduceRequest {
    let part = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let data = TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str(topic))).with_partition_data(vec![part]);
    ProduceRequest::default().with_acks(1).with_timeout_ms(30_000).with_topic_data(vec![data])
}

fn fetch(topic: &'static str) -> FetchRequest {
    let part = FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(64 << 20);
    let t = FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str(topic))).with_partitions(vec![part]);
    FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(64 << 20).with_topics(vec![t])
}

#[test]
fn a_produce_request_does_not_allocate_per_record() {
    let h = Harness::new();
    let small = batch(10).freeze();
    let large = batch(5_000).freeze(); // ~560 KB, under max.message.bytes
    h.create(&["alloc"]);
    assert!(matches!(h.call(ApiKey::Produce, 9, &produce("alloc", small.clone())), Outcome::Respond(_)));
    let for_small = h.allocations_of(ApiKey::Produce, 9, &produce("alloc", small));
    let for_large = h.allocations_of(ApiKey::Produce, 9, &produce("alloc", large));
    assert_eq!(for_small, for_large, "allocations for a batch of 10 records vs 5,000");
    let hw = h.broker.state().logs.partition("alloc", 0).unwrap().offsets().high_watermark;
    assert_eq!(hw, 10 + 5 * 10 + 5 * 5_000, "every produce was appended");
}

#[test]
fn a_fetch_response_does_not_allocate_per_batch() {
    let h = Harness::new();
    h.create(&["one", "thousand"]);
    let one = batch(5);
    let mut thousand = BytesMut::new();
    for _ in 0..1000 {
        thousand.extend_from_slice(&one);
    }
    for (topic, records) in [("one", one.freeze()), ("thousand", thousand.freeze())] {
        assert!(matches!(h.call(ApiKey::Produce, 9, &produce(topic, records)), Outcome::Respond(_)));
        h.call(ApiKey::Fetch, 12, &fetch(topic)); // warm: fetch sessions, first reads
    }
    let for_one = h.allocations_of(ApiKey::Fetch, 12, &fetch("one"));
    let for_thousand = h.allocations_of(ApiKey::Fetch, 12, &fetch("thousand"));
    assert_eq!(for_one, for_thousand, "allocations for a fetch of 1 batch vs 1,000");
    // And the thousand batches are in the response, as one file range.
    let Outcome::Respond(frame) = h.call(ApiKey::Fetch, 12, &fetch("thousand")) else { panic!("a fetch response") };
    let file_bytes: u64 = frame.chunks.iter().map(|c| if let Chunk::File(f) = c { f.len } else { 0 }).sum();
    assert_eq!(file_bytes, 1000 * one_len(), "every batch is sent from the segment file");
}

fn one_len() -> u64 {
    batch(5).len() as u64
}
