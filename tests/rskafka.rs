//! rskafka, a second, pure-Rust client with its own protocol code: topics created and
//! deleted through its controller client, every codec round trip with keys, headers and
//! timestamps, offsets (earliest, latest, by time) and DeleteRecords.

mod common;

use common::{covers, not_offered, RSKAFKA};
use ferrite::testing::EmbeddedBroker;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use std::collections::BTreeMap;

fn record(i: i64) -> Record {
    Record {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(format!("v{i}").into_bytes()),
        headers: BTreeMap::from([("h".to_string(), format!("x{i}").into_bytes())]),
        timestamp: Utc.timestamp_millis_opt(1_700_000_000_000 + i * 10).unwrap(),
    }
}

#[test]
fn rskafka_round_trips_offsets_and_admin() {
    let _covers = covers(RSKAFKA, &["round_trip", "codecs", "by_time", "partitions", "admin.topics", "admin.delete_records"]);
    not_offered(
        RSKAFKA,
        &[
            ("groups", "rskafka has no consumer groups"),
            ("idempotence", "rskafka has no idempotent producer"),
            ("transactions", "rskafka has no transactional producer"),
            ("groups.kip848", "rskafka has no consumer groups"),
            ("admin.configs", "rskafka has no config calls"),
            ("admin.cluster", "rskafka has no DescribeCluster"),
            ("admin.groups", "rskafka has no group calls"),
            ("admin.log_dirs", "rskafka has no DescribeLogDirs"),
            ("admin.transactions", "rskafka has no transaction calls"),
        ],
    );
    // The in-process broker has its own runtime; the client runs on another.
    let broker = EmbeddedBroker::start();
    let bootstrap = broker.bootstrap();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(bootstrap));
}

async fn run(bootstrap: String) {
    let client = ClientBuilder::new(vec![bootstrap]).build().await.expect("rskafka connects");
    let controller = client.controller_client().unwrap();
    let codecs = [
        ("none", Compression::NoCompression),
        ("gzip", Compression::Gzip),
        ("lz4", Compression::Lz4),
        ("snappy", Compression::Snappy),
        ("zstd", Compression::Zstd),
    ];
    for (name, codec) in codecs {
        let topic = format!("rs-{name}");
        controller.create_topic(&topic, 2, 1, 5_000).await.expect("create_topic");
        let part = client.partition_client(&topic, 1, UnknownTopicHandling::Retry).await.unwrap();
        let offsets = part.produce((0..20).map(record).collect(), codec).await.expect("produce");
        assert_eq!(offsets, (0..20).collect::<Vec<i64>>(), "{name}: offsets in order");
        let (got, high_watermark) = part.fetch_records(0, 1..1_000_000, 1_000).await.expect("fetch");
        assert_eq!(high_watermark, 20);
        assert_eq!(got.len(), 20, "{name}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.record, record(i as i64), "{name}: record {i} as produced");
        }
        assert_eq!(part.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
        assert_eq!(part.get_offset(OffsetAt::Latest).await.unwrap(), 20);
        let ts = Utc.timestamp_millis_opt(1_700_000_000_000 + 55).unwrap();
        assert_eq!(part.get_offset(OffsetAt::Timestamp(ts)).await.unwrap(), 6, "{name}: first record at or after the time");
    }
    let part = client.partition_client("rs-none", 1, UnknownTopicHandling::Retry).await.unwrap();
    part.delete_records(7, 5_000).await.expect("delete_records");
    assert_eq!(part.get_offset(OffsetAt::Earliest).await.unwrap(), 7);
    let topics: Vec<String> = client.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(topics.contains(&"rs-zstd".to_string()));
    controller.delete_topic("rs-zstd", 5_000).await.expect("delete_topic");
    // Many partitions: each its own log, offsets from 0.
    controller.create_topic("rs-many", 32, 1, 5_000).await.expect("create_topic");
    for p in 0..32 {
        let part = client.partition_client("rs-many", p, UnknownTopicHandling::Retry).await.unwrap();
        let offsets = part.produce((0..=p as i64).map(record).collect(), Compression::Lz4).await.expect("produce");
        assert_eq!(offsets, (0..=p as i64).collect::<Vec<i64>>());
    }
    for p in 0..32 {
        let part = client.partition_client("rs-many", p, UnknownTopicHandling::Retry).await.unwrap();
        assert_eq!(part.get_offset(OffsetAt::Latest).await.unwrap(), p as i64 + 1, "partition {p}");
    }
    let topics: Vec<String> = client.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(!topics.contains(&"rs-zstd".to_string()));
}
