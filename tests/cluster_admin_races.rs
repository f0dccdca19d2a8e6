//! Admin calls that race through different brokers of one three-node cluster: the active
//! controller decides each against the metadata log, so exactly one of two conflicting
//! calls wins, the loser gets Kafka's error, and every broker ends with the same topics
//! (same ids, same partition counts) — none stuck retrying something it cannot make.

mod common;

use common::cluster::{connect, eventually, Cluster};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(port: u16, topic: &str, partitions: i32) -> i16 {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default().with_name(name(topic)).with_num_partitions(partitions).with_replication_factor(1)]);
    let resp: CreateTopicsResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::CreateTopics, 7, &req);
    resp.topics[0].error_code
}

fn delete(port: u16, topic: &str) -> i16 {
    let req = DeleteTopicsRequest::default().with_timeout_ms(30_000).with_topic_names(vec![name(topic)]);
    let resp: DeleteTopicsResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::DeleteTopics, 5, &req);
    resp.responses[0].error_code
}

fn grow(port: u16, topic: &str, count: i32) -> i16 {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatePartitionsTopic::default().with_name(name(topic)).with_count(count)]);
    let resp: CreatePartitionsResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::CreatePartitions, 3, &req);
    resp.results[0].error_code
}

/// Every topic `port` lists whose name starts with `prefix`: name → (id, partitions).
fn topics(port: u16, prefix: &str) -> BTreeMap<String, (uuid::Uuid, usize)> {
    let req = MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::Metadata, 12, &req);
    resp.topics
        .iter()
        .filter_map(|t| {
            let n = t.name.as_ref()?.to_string();
            n.starts_with(prefix).then(|| (n, (t.topic_id, t.partitions.len())))
        })
        .collect()
}

/// The same topic named through `topics` at once.
fn one_topic(port: u16, topic: &str) -> Option<(uuid::Uuid, usize)> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::Metadata, 12, &req);
    let t = &resp.topics[0];
    (t.error_code == NONE).then(|| (t.topic_id, t.partitions.len()))
}

/// Runs `f(broker id)` on every broker at the same moment; the answers by broker.
fn at_once<T: Send + 'static>(ids: &[i32], f: impl Fn(i32) -> T + Send + Sync + 'static) -> BTreeMap<i32, T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(ids.len()));
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let (f, barrier, id) = (f.clone(), barrier.clone(), *id);
            std::thread::spawn(move || {
                barrier.wait();
                (id, f(id))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Every broker lists the same topics under `prefix`, as soon as the calls have answered.
fn same_everywhere(cluster: &Cluster, prefix: &str) -> BTreeMap<String, (uuid::Uuid, usize)> {
    let views: Vec<_> = cluster.ids().iter().map(|id| topics(cluster.port(*id), prefix)).collect();
    assert!(views.iter().all(|v| *v == views[0]), "every broker lists the same {prefix}* topics: {views:?}");
    views[0].clone()
}

#[test]
fn conflicting_admin_calls_through_different_brokers_have_one_winner_and_one_outcome() {
    let mut cluster = Cluster::new("races");
    cluster.start_all_live();
    let ids = cluster.ids();
    let ports = [0, cluster.port(1), cluster.port(2), cluster.port(3)];
    let port = move |id: i32| ports[id as usize];

    // One name, created through all three at once, five times over.
    for round in 0..5 {
        let topic = format!("same-{round}");
        let t = topic.clone();
        let codes = at_once(&ids, move |id| create(port(id), &t, 3));
        let mut sorted: Vec<i16> = codes.values().copied().collect();
        sorted.sort();
        assert_eq!(sorted, vec![NONE, TOPIC_ALREADY_EXISTS, TOPIC_ALREADY_EXISTS], "{topic}: one winner: {codes:?}");
    }
    let same = same_everywhere(&cluster, "same-");
    assert_eq!(same.len(), 5);
    assert!(same.values().all(|(_, n)| *n == 3));

    // Names that collide once '.' and '_' are treated alike (Kafka refuses the second).
    for round in 0..3 {
        let (dot, underscore) = (format!("clash.{round}"), format!("clash_{round}"));
        let codes = at_once(&ids[..2], move |id| if id == 1 { create(port(1), &dot, 2) } else { create(port(2), &underscore, 2) });
        let mut sorted: Vec<i16> = codes.values().copied().collect();
        sorted.sort();
        assert_eq!(sorted, vec![NONE, INVALID_TOPIC_EXCEPTION], "round {round}: one of two colliding names: {codes:?}");
    }
    assert_eq!(same_everywhere(&cluster, "clash").len(), 3);

    // Two growths of one topic at once: the larger wins or both apply in turn; a count not
    // above the current one is INVALID_PARTITIONS, never a silent success.
    assert_eq!(create(port(1), "grown", 2), NONE);
    let codes = at_once(&ids[1..], move |id| grow(port(id), "grown", if id == 2 { 4 } else { 6 }));
    let after = one_topic(port(1), "grown").unwrap().1;
    match (codes[&2], codes[&3]) {
        (NONE, NONE) => assert_eq!(after, 6, "4 then 6"),
        (INVALID_PARTITIONS, NONE) => assert_eq!(after, 6, "6 first; 4 is fewer"),
        other => panic!("unexpected outcome {other:?}, {after} partitions"),
    }
    assert_eq!(grow(port(2), "grown", 6), INVALID_PARTITIONS, "already 6");
    assert_eq!(same_everywhere(&cluster, "grown")["grown"].1, 6);

    // A deletion racing a growth and a re-creation: whatever the order, all brokers agree,
    // and the name can be used again afterwards.
    for round in 0..3 {
        let topic = format!("churn-{round}");
        assert_eq!(create(port(1), &topic, 2), NONE);
        let t = topic.clone();
        let codes = at_once(&ids, move |id| match id {
            1 => delete(port(1), &t),
            2 => grow(port(2), &t, 3),
            _ => create(port(3), &t, 5),
        });
        assert_eq!(codes[&1], NONE, "the deletion of an existing topic succeeds: {codes:?}");
        assert!([NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS].contains(&codes[&2]), "{codes:?}");
        assert!([NONE, TOPIC_ALREADY_EXISTS].contains(&codes[&3]), "{codes:?}");
        let left = same_everywhere(&cluster, &topic);
        if codes[&3] == NONE {
            assert_eq!(left.get(&topic).map(|t| t.1), Some(5), "re-created after the deletion: {codes:?}");
        } else {
            assert!(left.is_empty(), "deleted, and the re-creation came first: {codes:?} {left:?}");
        }
        // Either way the name works now.
        if left.is_empty() {
            assert_eq!(create(port(2), &topic, 1), NONE);
        }
        eventually("the name in use everywhere", Duration::from_secs(10), || ids.iter().map(|id| one_topic(port(*id), &topic).is_some()).collect::<Vec<_>>(), |v| v.iter().all(|x| *x));
    }
    // No broker is left retrying a topic it cannot make: a new one goes through each.
    for id in &ids {
        assert_eq!(create(port(*id), &format!("after-{id}"), 1), NONE);
    }
    assert_eq!(same_everywhere(&cluster, "after-").len(), 3);
}
