//! Several real `ferrite` processes on 127.0.0.1 forming one cluster of combined nodes
//! (broker and controller each): their configuration as Kafka's, formatting, start and
//! restart, and the questions tests ask them over the wire.

use super::process::{free_port, Ferrite, TempDir};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

pub struct Node {
    pub id: i32,
    pub port: u16,
    pub cport: u16,
    pub dir: TempDir,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub voters: String,
    pub running: BTreeMap<i32, Ferrite>,
}

pub fn node_keys(node: &Node, voters: &str) -> Vec<(String, String)> {
    let listeners = format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", node.port, node.cport);
    [
        ("node.id", node.id.to_string()),
        ("controller.quorum.voters", voters.to_string()),
        ("listeners", listeners),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string()),
        ("controller.listener.names", "CONTROLLER".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `ferrite format --cluster-id` with the node's configuration, as `kafka-storage format`.
pub fn format(node: &Node, voters: &str, cluster_id: &str) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"));
    c.args(["--data-dir", node.dir.0.to_str().unwrap()]);
    for (k, v) in node_keys(node, voters) {
        c.args(["--override", &format!("{k}={v}")]);
    }
    c.args(["format", "--cluster-id", cluster_id]).output().unwrap()
}

/// Starts the node's process without waiting for it to serve (it serves once a majority
/// of the quorum runs). Node 3 is given the cluster id as Kafka's image is; the others
/// must have been formatted with it.
pub fn spawn(node: &Node, voters: &str) -> Ferrite {
    let mut keys = node_keys(node, voters);
    keys.extend(
        [
            ("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{}", node.port)),
            ("controller.quorum.election.timeout.ms", "500".to_string()),
            ("broker.session.timeout.ms", "2000".to_string()),
            ("broker.heartbeat.interval.ms", "300".to_string()),
            ("group.initial.rebalance.delay.ms", "0".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env: &[(&str, &str)] = if node.id == 3 { &[("CLUSTER_ID", CLUSTER_ID)] } else { &[] };
    Ferrite::spawn_with_env(&node.dir.0, node.port, &keys, env)
}

pub fn start(node: &Node, voters: &str) -> Ferrite {
    let f = spawn(node, voters);
    f.wait_serving();
    f
}

/// A broker-only node (`process.roles=broker`, no controller listener) of the cluster whose
/// voters are `voters`, formatted and started; waits until it serves.
pub fn start_broker_only(node: &Node, voters: &str) -> Ferrite {
    let f = format_and_spawn(node, &[
        ("node.id", node.id.to_string()),
        ("process.roles", "broker".to_string()),
        ("controller.quorum.voters", voters.to_string()),
        ("listeners", format!("PLAINTEXT://127.0.0.1:{}", node.port)),
        ("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{}", node.port)),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string()),
        ("controller.listener.names", "CONTROLLER".to_string()),
        ("broker.session.timeout.ms", "2000".to_string()),
        ("broker.heartbeat.interval.ms", "300".to_string()),
    ]);
    f.wait_serving();
    f
}

/// A controller-only node (`process.roles=controller`, a controller listener alone) of
/// the quorum `voters`, formatted and started; it votes once a majority runs. Its
/// `Ferrite::port` is its controller port.
pub fn spawn_controller_only(node: &Node, voters: &str) -> Ferrite {
    format_and_spawn(node, &[
        ("node.id", node.id.to_string()),
        ("process.roles", "controller".to_string()),
        ("controller.quorum.voters", voters.to_string()),
        ("listeners", format!("CONTROLLER://127.0.0.1:{}", node.cport)),
        ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT".to_string()),
        ("controller.listener.names", "CONTROLLER".to_string()),
        ("controller.quorum.election.timeout.ms", "500".to_string()),
        ("broker.session.timeout.ms", "2000".to_string()),
        ("broker.heartbeat.interval.ms", "300".to_string()),
    ])
}

/// `ferrite format --cluster-id` with `keys` (idempotent), then the process, not waited for.
fn format_and_spawn(node: &Node, keys: &[(&str, String)]) -> Ferrite {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"));
    c.args(["--data-dir", node.dir.0.to_str().unwrap()]);
    for (k, v) in keys {
        c.args(["--override", &format!("{k}={v}")]);
    }
    let out = c.args(["format", "--cluster-id", CLUSTER_ID, "--ignore-formatted"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let port = keys.iter().find(|(k, _)| *k == "process.roles").filter(|(_, v)| *v == "controller").map_or(node.port, |_| node.cport);
    Ferrite::spawn_with_env(&node.dir.0, port, &keys, &[])
}

impl Cluster {
    /// Three nodes with their ports and directories, not started.
    pub fn new(name: &str) -> Self {
        let nodes: Vec<Node> =
            (1..=3).map(|id| Node { id, port: free_port(), cport: free_port(), dir: TempDir::new(&format!("{name}-{id}")) }).collect();
        let voters = nodes.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cport)).collect::<Vec<_>>().join(",");
        Cluster { nodes, voters, running: BTreeMap::new() }
    }

    /// Formats nodes 1 and 2, starts all three and waits until each serves.
    pub fn start_all(&mut self) {
        for n in &self.nodes[..2] {
            let out = format(n, &self.voters, CLUSTER_ID);
            assert!(out.status.success(), "{out:?}");
        }
        for n in &self.nodes {
            self.running.insert(n.id, spawn(n, &self.voters));
        }
        self.running.values().for_each(Ferrite::wait_serving);
    }

    /// `start_all`, then waits until every broker sees all three live.
    pub fn start_all_live(&mut self) {
        self.start_all();
        let all = self.ids();
        for id in &all {
            eventually("three live brokers", Duration::from_secs(30), || cluster_view(self.port(*id)).0, |b| *b == all);
        }
    }

    pub fn port(&self, id: i32) -> u16 {
        self.nodes[id as usize - 1].port
    }

    pub fn bootstrap(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.port(id))
    }

    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn kill9(&mut self, id: i32) {
        self.running.remove(&id).expect("running").kill9();
    }

    pub fn restart(&mut self, id: i32) {
        let f = start(&self.nodes[id as usize - 1], &self.voters);
        self.running.insert(id, f);
    }
}

pub fn connect(port: u16) -> Option<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Some(s)
}

/// (broker ids, controller id) as DescribeCluster from `port` has them.
pub fn cluster_view(port: u16) -> (Vec<i32>, i32) {
    let mut s = connect(port).expect("the broker accepts connections");
    let resp: DescribeClusterResponse = super::raw::call(&mut s, ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default());
    (resp.brokers.iter().map(|b| b.broker_id.0).collect(), resp.controller_id.0)
}

/// The metadata quorum's partition as `port` describes it (DescribeQuorum v1).
fn describe_quorum(port: u16) -> kafka_protocol::messages::describe_quorum_response::PartitionData {
    let mut s = connect(port).expect("the broker accepts connections");
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let mut resp: DescribeQuorumResponse = super::raw::call(&mut s, ApiKey::DescribeQuorum, 1, &req);
    resp.topics.remove(0).partitions.remove(0)
}

/// (leader, voters) of the metadata quorum as `port` describes it.
pub fn quorum_view(port: u16) -> (i32, Vec<i32>) {
    let p = describe_quorum(port);
    (p.leader_id.0, p.current_voters.iter().map(|v| v.replica_id.0).collect())
}

/// Polls `f` until `ok` holds; fails the test with the last value after `within`.
pub fn eventually<T: std::fmt::Debug>(what: &str, within: Duration, mut f: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
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

/// (high watermark, each voter's log end offset) of the metadata quorum as `port`
/// describes it; -1 where the leader does not know a voter's.
pub fn quorum_offsets(port: u16) -> (i64, BTreeMap<i32, i64>) {
    let p = describe_quorum(port);
    (p.high_watermark, p.current_voters.iter().map(|v| (v.replica_id.0, v.log_end_offset)).collect())
}
