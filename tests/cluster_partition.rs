//! A node cut off from the others by the network (`common::links`), still running and
//! still reached by its clients: the majority elects a controller among itself and fences
//! the cut node's broker; the cut node answers its clients' admin calls with an error in
//! bounded time, never a hang, and never commits anything; healed, it follows the new
//! controller, is unfenced, and knows everything decided without it.

mod common;

use common::cluster::{cluster_view, connect, eventually, format, quorum_view, spawn, Node, CLUSTER_ID};
use common::links::Links;
use common::process::{free_port, Ferrite, TempDir};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const REQUEST_TIMED_OUT: i16 = 7;

fn create(port: u16, topic: &str) -> i16 {
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_num_partitions(3)
        .with_replication_factor(1)]);
    let mut s = connect(port).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let resp: CreateTopicsResponse = common::raw::call(&mut s, ApiKey::CreateTopics, 7, &req);
    resp.topics[0].error_code
}

fn known(port: u16, topic: &str) -> bool {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = common::raw::call(&mut connect(port).unwrap(), ApiKey::Metadata, 12, &req);
    resp.topics[0].error_code == 0
}

#[test]
fn a_node_cut_off_from_the_quorum_commits_nothing_and_rejoins_when_healed() {
    let nodes: Vec<Node> = (1..=3).map(|id| Node { id, port: free_port(), cport: free_port(), dir: TempDir::new(&format!("partition-{id}")) }).collect();
    let links = Links::new(&nodes.iter().map(|n| (n.id, n.cport)).collect());
    for n in &nodes {
        let out = format(n, &links.voters_for(n.id), CLUSTER_ID);
        assert!(out.status.success(), "{out:?}");
    }
    let _running: BTreeMap<i32, Ferrite> = nodes.iter().map(|n| (n.id, spawn(n, &links.voters_for(n.id)))).collect();
    _running.values().for_each(Ferrite::wait_serving);
    let port = |id: i32| nodes[id as usize - 1].port;
    let all = vec![1, 2, 3];
    for id in &all {
        eventually("three live brokers", Duration::from_secs(30), || cluster_view(port(*id)).0, |b| *b == all);
    }
    let (leader, _) = eventually("a led quorum", Duration::from_secs(10), || quorum_view(port(1)), |v| v.0 > 0);
    assert_eq!(create(port(leader), "before"), 0);

    // The active controller is cut off; an admin call through it at once (before it has
    // anything else uncommitted) times out as well.
    links.isolate(leader);
    let started = Instant::now();
    assert_eq!(create(port(leader), "at-the-cut"), REQUEST_TIMED_OUT);
    assert!(started.elapsed() < Duration::from_secs(15), "answered, not hung: {:?}", started.elapsed());
    assert_eq!(links.cut().len(), 4, "both ways to both others");
    let others: Vec<i32> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, _) = eventually("the majority elects another", Duration::from_secs(20), || quorum_view(port(others[0])), |v| v.0 > 0 && v.0 != leader);
    assert_eq!(quorum_view(port(others[1])).0, next);
    eventually("the cut node's broker fenced", Duration::from_secs(15), || cluster_view(port(next)).0, |b| *b == others);
    assert_eq!(create(port(others[1]), "during"), 0, "the majority goes on deciding");

    // The cut node still serves its clients, but decides nothing: an admin call through it
    // fails in bounded time, and what it was asked never appears.
    let started = Instant::now();
    let code = create(port(leader), "from-the-cut-node");
    assert_eq!(code, REQUEST_TIMED_OUT, "nothing is created without a majority; the client is told to retry");
    assert!(started.elapsed() < Duration::from_secs(15), "answered, not hung: {:?}", started.elapsed());
    assert!(!known(port(leader), "during"), "the cut node cannot know what the majority decided");

    // Healed: it follows the new controller, is unfenced, and catches up.
    links.heal();
    eventually("the healed node follows the new controller", Duration::from_secs(20), || quorum_view(port(leader)).0, |l| *l == next);
    for id in &all {
        assert_eq!(quorum_view(port(*id)).0, next, "node {id}: one active controller");
        eventually("all three unfenced", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == all);
    }
    eventually("the healed node knows what was decided without it", Duration::from_secs(10), || known(port(leader), "during"), |k| *k);
    for id in &all {
        for never in ["at-the-cut", "from-the-cut-node"] {
            assert!(!known(port(*id), never), "node {id}: the cut node's {never} was never committed");
        }
    }
    assert_eq!(create(port(leader), "after-heal"), 0, "admin through it reaches the new controller");
    for id in &all {
        assert!(known(port(*id), "after-heal"));
    }
}
