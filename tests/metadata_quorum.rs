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
fn a_node_configured_for_several_refuses_to_start_until_clusters_are_served() {
    let dir = TempDir::new("voters");
    let port = free_port();
    let cport = free_port();
    let out = run_expecting_exit(
        &dir.0,
        port,
        &[
            ("node.id", "1"),
            ("controller.quorum.voters", &format!("1@127.0.0.1:{cport},2@127.0.0.1:1,3@127.0.0.1:2")),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", &format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}")),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ],
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not served yet"), "{text}");
    // A lone node still starts as before.
    let f = Ferrite::start(&dir.0, port, &[]);
    assert_eq!(describe(&f.bootstrap(), 2).topics[0].partitions[0].leader_id.0, 0);
}
