//! The lone node's metadata quorum as clients see it: DescribeQuorum answers as Kafka's
//! does for `kafka-metadata-quorum describe --status`, the broker registers itself in the
//! metadata log, and the log survives clean and unclean restarts (issue 18, first step).
//! (A lone voter that restarts keeps its term: its own committed vote needs no election.)

mod common;

use common::process::{free_port, run_expecting_exit, Ferrite, TempDir};
use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn describe(bs: &str, version: i16) -> DescribeQuorumResponse {
    let mut s = TcpStream::connect(bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    common::raw::call(&mut s, ApiKey::DescribeQuorum, version, &req)
}

/// Waits until node 0 is registered at `epoch` (each start registers one epoch up).
fn registered_at(b: &EmbeddedBroker, epoch: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let quorum = b.broker().state().quorum.clone();
        let now = quorum.image().borrow().brokers.get(&0).map(|r| r.epoch);
        if now == Some(epoch) {
            return;
        }
        assert!(Instant::now() < deadline, "node 0 is registered at {now:?}, not {epoch}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_lone_node_is_its_own_quorum_and_describes_it() {
    let mut b = EmbeddedBroker::start();
    registered_at(&b, 1);
    for version in 0..=2 {
        let resp = describe(&b.bootstrap(), version);
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.leader_id.0, 0, "v{version}: node 0 leads");
        assert!(p.leader_epoch >= 1 && p.high_watermark >= 2, "v{version}: {p:?}");
        assert_eq!(p.current_voters.iter().map(|v| v.replica_id.0).collect::<Vec<_>>(), vec![0]);
        assert!(p.current_voters[0].log_end_offset >= p.high_watermark);
        assert!(p.observers.is_empty());
        if version >= 2 {
            assert_eq!(resp.nodes.len(), 1, "the voter's endpoints");
        }
    }
    // Another partition of the metadata topic does not exist.
    let mut s = TcpStream::connect(b.bootstrap()).unwrap();
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(1)])]);
    let resp: DescribeQuorumResponse = common::raw::call(&mut s, ApiKey::DescribeQuorum, 1, &req);
    assert_eq!(resp.topics[0].partitions[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    // The metadata log survives a clean restart and a crash: each start registers anew,
    // one epoch up, and the quorum's epoch only grows.
    let before = describe(&b.bootstrap(), 1).topics[0].partitions[0].clone();
    b.restart().unwrap();
    registered_at(&b, 2);
    b.crash_and_restart().unwrap();
    registered_at(&b, 3);
    let after = describe(&b.bootstrap(), 1).topics[0].partitions[0].clone();
    assert!(after.leader_epoch >= before.leader_epoch, "the quorum's epoch never goes back");
    assert!(after.high_watermark >= before.high_watermark + 2, "two more registrations committed: {before:?} then {after:?}");
    assert_eq!(after.leader_id.0, 0);
    assert!(b.data_dir().join("__cluster_metadata-0/quorum-state").exists());
    // The metadata log is not mistaken for a partition.
    let admin_view = b.broker().state().logs.topic("__cluster_metadata");
    assert!(admin_view.is_none());
}

#[test]
fn nodes_this_build_cannot_serve_refuse_to_start_before_writing_anything() {
    let dir = TempDir::new("voters");
    let port = free_port();
    let cport = free_port();
    let voters = format!("1@127.0.0.1:{cport},2@127.0.0.1:1,3@127.0.0.1:2");
    let refused = |keys: &[(&str, &str)], why: &str| {
        let out = run_expecting_exit(&dir.0, port, keys, Duration::from_secs(20));
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(why), "{text}");
        assert!(!dir.0.join("meta.properties").exists(), "nothing written");
    };
    let listeners = format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}");
    let combined = [
        ("node.id", "1"),
        ("controller.quorum.voters", voters.as_str()),
        ("controller.listener.names", "CONTROLLER"),
        ("listeners", listeners.as_str()),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
    ];
    // A node of a cluster that was never formatted does not invent its own cluster id.
    refused(&combined, "ferrite format");
    // Nor does a controller-only node.
    let controller_only = format!("CONTROLLER://127.0.0.1:{cport}");
    refused(
        &[
            ("node.id", "1"),
            ("process.roles", "controller"),
            ("controller.quorum.voters", voters.as_str()),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", controller_only.as_str()),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ],
        "ferrite format",
    );
    // A lone node still starts as before.
    let f = Ferrite::start(&dir.0, port, &[]);
    assert_eq!(describe(&f.bootstrap(), 2).topics[0].partitions[0].leader_id.0, 0);
}

fn image(b: &EmbeddedBroker) -> std::sync::Arc<ferrite::cluster::image::MetadataImage> {
    b.broker().state().quorum.image().borrow().clone()
}

#[test]
fn topics_live_in_the_metadata_log_and_the_logs_follow_it() {
    use common::create_topic;
    let mut b = EmbeddedBroker::start();
    create_topic(&b.bootstrap(), "kept", 3, &[("retention.ms", "123456")]);
    let local = b.broker().state().logs.topic("kept").unwrap();
    let img = image(&b);
    let t = img.topic("kept").expect("a TopicRecord for the new topic");
    assert_eq!(t.id, local.id, "one topic id, in the log and on disk");
    assert_eq!(t.partitions.len(), 3);
    assert!(t.partitions.values().all(|p| p.replicas == vec![0] && p.leader == 0 && p.isr == vec![0]));
    assert_eq!(img.topic_configs("kept").unwrap().get("retention.ms").map(String::as_str), Some("123456"));

    // Growth, config changes and deletion are records too.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", b.bootstrap()).create().unwrap();
    let opts = rdkafka::admin::AdminOptions::new();
    rt.block_on(admin.create_partitions([&rdkafka::admin::NewPartitions::new("kept", 5)], &opts)).unwrap()[0].clone().unwrap();
    assert_eq!(image(&b).topic("kept").unwrap().partitions.len(), 5);
    assert_eq!(b.broker().state().logs.topic("kept").unwrap().partitions.len(), 5);
    let alter = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic("kept")).set("retention.ms", "999");
    assert!(rt.block_on(admin.alter_configs([&alter], &opts)).unwrap()[0].is_ok());
    assert_eq!(image(&b).topic_configs("kept").unwrap().get("retention.ms").map(String::as_str), Some("999"));
    assert_eq!(b.broker().state().logs.partition("kept", 0).unwrap().log().config().retention_ms, 999);
    create_topic(&b.bootstrap(), "gone", 1, &[]);
    rt.block_on(admin.delete_topics(&["gone"], &opts)).unwrap()[0].clone().unwrap();
    assert!(image(&b).topic("gone").is_none());
    assert!(b.broker().state().logs.topic("gone").is_none());

    // After a crash everything is as the log says.
    b.crash_and_restart().unwrap();
    let img = image(&b);
    assert_eq!(img.topic("kept").unwrap().partitions.len(), 5);
    assert!(img.topic("gone").is_none() && b.broker().state().logs.topic("gone").is_none());
    assert_eq!(b.broker().state().logs.topic("kept").unwrap().id, img.topic("kept").unwrap().id);
}

#[test]
fn a_data_directory_from_before_the_metadata_log_is_taken_over_whole() {
    use common::create_topic;
    use rdkafka::producer::BaseRecord;
    let mut b = EmbeddedBroker::start();
    create_topic(&b.bootstrap(), "old", 2, &[("cleanup.policy", "compact")]);
    let p = common::producer(&b.bootstrap(), &[]);
    common::produce_all(&p, (0..10).map(|i| BaseRecord::to("old").partition(i % 2).key(&b"k"[..]).payload(&b"v"[..])).collect());
    drop(p);
    let id = b.broker().state().logs.topic("old").unwrap().id;
    b.restart().unwrap();
    // As a data directory written before there was a metadata log.
    let dir = b.data_dir().to_path_buf();
    let meta = dir.join("__cluster_metadata-0");
    drop_and_remove(&mut b, &meta);
    let img = image(&b);
    assert!(img.migrated);
    let t = img.topic("old").expect("the topic on disk is recorded");
    assert_eq!((t.id, t.partitions.len()), (id, 2), "with its own id and partitions");
    assert_eq!(img.topic_configs("old").unwrap().get("cleanup.policy").map(String::as_str), Some("compact"));
    let got = common::consume(&b.bootstrap(), "old", &[0, 1], rdkafka::Offset::Beginning, 10, Duration::from_secs(20));
    assert_eq!(got.len(), 10, "nothing lost");
}

/// Stops the broker, removes `meta` (its metadata log) and starts it again.
fn drop_and_remove(b: &mut EmbeddedBroker, meta: &std::path::Path) {
    b.stop_then(|| std::fs::remove_dir_all(meta).unwrap()).unwrap();
}

#[test]
fn a_topic_whose_partitions_cannot_be_made_is_taken_out_of_the_metadata_log_again() {
    let mut b = EmbeddedBroker::start();
    std::fs::write(b.data_dir().join("blocked-1"), b"in the way").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", b.bootstrap()).create().unwrap();
    let t = rdkafka::admin::NewTopic::new("blocked", 3, rdkafka::admin::TopicReplication::Fixed(1));
    let res = rt.block_on(admin.create_topics([&t], &rdkafka::admin::AdminOptions::new())).unwrap();
    assert!(res[0].is_err(), "the creation failed: {res:?}");
    assert!(image(&b).topic("blocked").is_none(), "and is not in the metadata log");
    assert!(b.broker().state().logs.topic("blocked").is_none());
    b.crash_and_restart().unwrap();
    assert!(image(&b).topic("blocked").is_none() && b.broker().state().logs.topic("blocked").is_none());
    std::fs::remove_file(b.data_dir().join("blocked-1")).unwrap();
    // A new client: the old one's connection went with the crashed broker.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", b.bootstrap()).create().unwrap();
    let res = rt.block_on(admin.create_topics([&t], &rdkafka::admin::AdminOptions::new())).unwrap();
    assert!(res[0].is_ok(), "the name is free: {res:?}");
}

fn init_producer_id(bs: &str) -> i64 {
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
    let mut s = TcpStream::connect(bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
    let resp: InitProducerIdResponse = common::raw::call(&mut s, ApiKey::InitProducerId, 4, &req);
    assert_eq!(resp.error_code, 0);
    resp.producer_id.0
}

#[test]
fn producer_ids_come_in_blocks_from_the_metadata_log_and_are_never_handed_out_twice() {
    let mut b = EmbeddedBroker::start();
    // A data directory from before the metadata log had reserved ids up to 7,000.
    let dir = b.data_dir().to_path_buf();
    b.stop_then(|| std::fs::write(dir.join("producer-id-block"), "7000\n").unwrap()).unwrap();
    let first = init_producer_id(&b.bootstrap());
    assert!(first >= 7_000, "above the old reservation: {first}");
    assert!(image(&b).next_producer_id > first, "the block is recorded in the metadata log");
    let second = init_producer_id(&b.bootstrap());
    assert_eq!(second, first + 1);
    b.crash_and_restart().unwrap();
    let after = init_producer_id(&b.bootstrap());
    assert!(after > second, "a restart starts a new block: {after} after {second}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..1_500 {
        assert!(seen.insert(init_producer_id(&b.bootstrap())), "an id handed out twice");
    }
    assert!(seen.iter().all(|id| *id > second));
}

#[test]
fn dynamic_broker_configs_live_in_the_metadata_log_and_old_ones_are_taken_over() {
    let mut b = EmbeddedBroker::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", b.bootstrap()).create().unwrap();
    let alter = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Broker(0)).set("log.retention.ms", "4242");
    assert!(rt.block_on(admin.alter_configs([&alter], &rdkafka::admin::AdminOptions::new())).unwrap()[0].is_ok());
    let key = (ferrite::cluster::records::CONFIG_BROKER, "0".to_string());
    assert_eq!(image(&b).configs.get(&key).and_then(|c| c.get("log.retention.ms")).map(String::as_str), Some("4242"));
    assert_eq!(b.broker().state().logs.broker_config().log.retention_ms, 4242);
    b.crash_and_restart().unwrap();
    assert_eq!(b.broker().state().logs.broker_config().log.retention_ms, 4242, "after a crash, from the log");

    // An older data directory's dynamic-configs files are taken over at its first start.
    let dir = b.data_dir().to_path_buf();
    b.stop_then(|| {
        std::fs::remove_dir_all(dir.join("__cluster_metadata-0")).unwrap();
        std::fs::write(dir.join("dynamic-configs/cluster-default.properties"), "log.retention.ms=777\n").unwrap();
    })
    .unwrap();
    let img = image(&b);
    assert_eq!(img.configs.get(&(ferrite::cluster::records::CONFIG_BROKER, String::new())).and_then(|c| c.get("log.retention.ms")).map(String::as_str), Some("777"));
    assert_eq!(img.configs.get(&key).and_then(|c| c.get("log.retention.ms")).map(String::as_str), Some("4242"), "this broker's own, kept");
    assert_eq!(b.broker().state().logs.broker_config().log.retention_ms, 4242, "the node's own override still wins over the default");
}
