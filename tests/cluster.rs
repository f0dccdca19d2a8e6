//! Three real `ferrite` processes as one KRaft-style cluster (combined mode, still behind
//! FERRITE_EXPERIMENTAL_CLUSTER while topics are each node's own): they form one metadata
//! quorum, every broker registers and heartbeats, a killed broker is fenced after its
//! session and comes back on restart, and killing the active controller elects another.

mod common;

use common::process::{free_port, Ferrite, TempDir};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Node {
    id: i32,
    port: u16,
    cport: u16,
    dir: TempDir,
}

fn start(node: &Node, voters: &str) -> Ferrite {
    let listeners = format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", node.port, node.cport);
    let id = node.id.to_string();
    Ferrite::start_with_env(
        &node.dir.0,
        node.port,
        &[
            ("node.id", &id),
            ("controller.quorum.voters", voters),
            ("listeners", &listeners),
            ("advertised.listeners", &format!("PLAINTEXT://127.0.0.1:{}", node.port)),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.election.timeout.ms", "500"),
            ("broker.session.timeout.ms", "2000"),
            ("broker.heartbeat.interval.ms", "300"),
        ],
        &[("FERRITE_EXPERIMENTAL_CLUSTER", "1")],
    )
}

fn connect(port: u16) -> Option<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Some(s)
}

/// (broker ids, controller id) as DescribeCluster from `port` has them.
fn cluster_view(port: u16) -> (Vec<i32>, i32) {
    let mut s = connect(port).expect("the broker accepts connections");
    let resp: DescribeClusterResponse = common::raw::call(&mut s, ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default());
    (resp.brokers.iter().map(|b| b.broker_id.0).collect(), resp.controller_id.0)
}

/// (leader, voters) of the metadata quorum as `port` describes it.
fn quorum_view(port: u16) -> (i32, Vec<i32>) {
    let mut s = connect(port).expect("the broker accepts connections");
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let resp: DescribeQuorumResponse = common::raw::call(&mut s, ApiKey::DescribeQuorum, 1, &req);
    let p = &resp.topics[0].partitions[0];
    (p.leader_id.0, p.current_voters.iter().map(|v| v.replica_id.0).collect())
}

fn eventually<T: std::fmt::Debug>(what: &str, within: Duration, mut f: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + within;
    loop {
        let v = f();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: still {v:?} after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_combined_nodes_form_one_quorum_fence_a_dead_broker_and_survive_the_controller() {
    let nodes: Vec<Node> = (1..=3).map(|id| Node { id, port: free_port(), cport: free_port(), dir: TempDir::new(&format!("cluster-{id}")) }).collect();
    let voters = nodes.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cport)).collect::<Vec<_>>().join(",");
    let mut running: BTreeMap<i32, Ferrite> = nodes.iter().map(|n| (n.id, start(n, &voters))).collect();
    let port = |id: i32| nodes[id as usize - 1].port;
    let all = vec![1, 2, 3];

    // Every broker sees all three, and names the same active controller.
    for n in &nodes {
        let (brokers, _) = eventually("three live brokers", Duration::from_secs(30), || cluster_view(n.port), |v| v.0 == all);
        assert_eq!(brokers, all);
    }
    let (leader, voter_ids) = eventually("one leader everywhere", Duration::from_secs(10), || quorum_view(port(1)), |v| v.0 > 0);
    assert_eq!(voter_ids, all);
    for id in &all {
        assert_eq!(quorum_view(port(*id)).0, leader, "node {id} names the same leader");
        assert_eq!(cluster_view(port(*id)).1, leader, "node {id} names the active controller");
    }
    // A real client bootstrapped from one broker sees them all.
    let client: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{}", port(2))).create().unwrap();
    let md = client.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    let mut seen: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    seen.sort();
    assert_eq!(seen, all);

    // A broker killed outright is fenced after its session (2 s) and gone from Metadata.
    let victim = *all.iter().find(|id| **id != leader).unwrap();
    let others: Vec<i32> = all.iter().copied().filter(|id| *id != victim).collect();
    running.remove(&victim).unwrap().kill9();
    let t = Instant::now();
    for id in &others {
        eventually("the killed broker fenced", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == others);
    }
    assert!(t.elapsed() >= Duration::from_millis(1500), "fenced only after its session: {:?}", t.elapsed());
    running.insert(victim, start(&nodes[victim as usize - 1], &voters));
    for id in &all {
        eventually("the restarted broker back", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == all);
    }

    // The active controller is killed: the other two elect one of themselves, keep their
    // brokers unfenced, and fence the old controller's broker.
    running.remove(&leader).unwrap().kill9();
    let rest: Vec<i32> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, _) = eventually("a new leader", Duration::from_secs(15), || quorum_view(port(rest[0])), |v| v.0 > 0 && v.0 != leader);
    assert!(rest.contains(&next));
    for id in &rest {
        eventually("the old controller's broker fenced", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == rest);
    }
    running.insert(leader, start(&nodes[leader as usize - 1], &voters));
    for id in &all {
        eventually("all three again", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == all);
        assert_eq!(quorum_view(port(*id)).0, next, "the new leader stays");
    }
}
