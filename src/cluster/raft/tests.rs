//! The quorum under faults: three voters on real sockets elect a leader, agree on every
//! batch, lose the leader and go on, restart from disk, and bring a new observer up to date
//! from a snapshot.

use super::network::{serve_direct, Direct};
use super::{QuorumConfig, RaftQuorum};
use crate::cluster::quorum::{MetadataQuorum, QuorumError};
use crate::cluster::records::MetadataRecord;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Node {
    quorum: Arc<RaftQuorum>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn stop(self) {
        self.server.abort();
        self.quorum.shutdown().await;
    }
}

async fn start(id: i32, voters: &BTreeMap<i32, String>, addr: &str, root: &Path, snapshot_every: u64) -> Node {
    let cfg = QuorumConfig {
        node_id: id,
        voters: voters.clone(),
        dir: root.join(format!("node-{id}")).join("__cluster_metadata-0"),
        election_timeout: Duration::from_millis(300),
        snapshot_every,
    };
    // The port may still be held by a node just stopped: retry the bind briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let quorum = RaftQuorum::start::<Direct>(cfg).await.unwrap();
    let server = tokio::spawn(serve_direct(listener, quorum.raft().clone()));
    Node { quorum, server }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn leader_of(nodes: &BTreeMap<i32, Node>) -> Option<i32> {
    let leaders: Vec<i32> = nodes.values().filter_map(|n| n.quorum.status().leader_id).collect();
    // Every running node names the same leader, and it is one of them.
    (leaders.len() == nodes.len() && leaders.windows(2).all(|w| w[0] == w[1]) && nodes.contains_key(&leaders[0])).then(|| leaders[0])
}

fn topic(i: u32) -> Vec<MetadataRecord> {
    let topic_id = Uuid::from_u128(i as u128 + 1);
    vec![
        MetadataRecord::TopicRecord { name: format!("t{i}"), topic_id },
        MetadataRecord::PartitionRecord { partition_id: 0, topic_id, replicas: vec![1], isr: vec![1], leader: 1, leader_epoch: 0, partition_epoch: 0 },
    ]
}

async fn converged(nodes: &BTreeMap<i32, Node>, topics: usize) {
    wait_for(&format!("every node to see {topics} topics"), || {
        let images: Vec<_> = nodes.values().map(|n| n.quorum.image().borrow().clone()).collect();
        (images.iter().all(|i| i.topics.len() == topics) && images.windows(2).all(|w| w[0].topics == w[1].topics)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_agree_survive_the_leader_and_restart_from_disk() {
    let root = tempfile::tempdir().unwrap();
    let addrs: BTreeMap<i32, String> = (1..=3).map(|i| (i, free_addr())).collect();
    let mut nodes = BTreeMap::new();
    for (id, addr) in &addrs {
        nodes.insert(*id, start(*id, &addrs, addr, root.path(), 20).await);
    }
    let leader = wait_for("a leader", || leader_of(&nodes)).await;

    // Only the leader appends; a follower says who leads.
    let follower = *addrs.keys().find(|id| **id != leader).unwrap();
    assert_eq!(nodes[&follower].quorum.append(topic(999)).await, Err(QuorumError::NotLeader { leader: Some(leader) }));
    let mut last = 0;
    for i in 0..30 {
        let offset = nodes[&leader].quorum.append(topic(i)).await.unwrap();
        assert!(offset > last, "offsets grow");
        last = offset;
        assert!(nodes[&leader].quorum.image().borrow().topic(&format!("t{i}")).is_some(), "applied when append returns");
    }
    converged(&nodes, 30).await;

    // The leader dies: the other two elect one of themselves and go on.
    nodes.remove(&leader).unwrap().stop().await;
    let next = wait_for("a new leader", || leader_of(&nodes)).await;
    assert_ne!(next, leader);
    for i in 30..40 {
        nodes[&next].quorum.append(topic(i)).await.unwrap();
    }
    converged(&nodes, 40).await;

    // The old leader comes back from its directory and catches up.
    nodes.insert(leader, start(leader, &addrs, &addrs[&leader], root.path(), 20).await);
    converged(&nodes, 40).await;
    let status = nodes[&next].quorum.status();
    assert_eq!(status.voters.len(), 3);
    assert!(status.high_watermark > last as i64);

    // A snapshot was taken (every 20 entries) and older entries purged.
    let dir = root.path().join(format!("node-{next}")).join("__cluster_metadata-0");
    let snapshots = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".checkpoint")).count();
    assert_eq!(snapshots, 1, "one snapshot kept");

    // A new observer (a broker-only node) is brought up to date, from the snapshot.
    let observer_addr = free_addr();
    let observer = start(4, &addrs, &observer_addr, root.path(), 20).await;
    nodes[&next].quorum.add_observer(4, observer_addr).await.unwrap();
    nodes.insert(4, observer);
    converged(&nodes, 40).await;
    assert_eq!(nodes[&next].quorum.status().observers.len(), 1);

    // Everyone stops; everyone starts again from disk with the same image.
    let before = nodes[&next].quorum.image().borrow().topics.clone();
    for (_, n) in std::mem::take(&mut nodes) {
        n.stop().await;
    }
    for (id, addr) in &addrs {
        nodes.insert(*id, start(*id, &addrs, addr, root.path(), 20).await);
    }
    let leader = wait_for("a leader after a full restart", || leader_of(&nodes)).await;
    nodes[&leader].quorum.append(topic(40)).await.unwrap();
    converged(&nodes, 41).await;
    let after = nodes[&leader].quorum.image().borrow().topics.clone();
    assert!(before.iter().all(|(id, t)| after.get(id) == Some(t)), "nothing committed was lost over the restart");
    for (_, n) in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_voter_leads_itself_and_keeps_its_log() {
    let root = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let voters = BTreeMap::from([(1, addr.clone())]);
    let node = start(1, &voters, &addr, root.path(), 1000).await;
    let nodes = BTreeMap::from([(1, node)]);
    wait_for("the lone voter to lead", || leader_of(&nodes)).await;
    for i in 0..5 {
        nodes[&1].quorum.append(topic(i)).await.unwrap();
    }
    let node = nodes.into_values().next().unwrap();
    node.stop().await;
    let node = start(1, &voters, &addr, root.path(), 1000).await;
    let nodes = BTreeMap::from([(1, node)]);
    wait_for("the lone voter to lead again", || leader_of(&nodes)).await;
    converged(&nodes, 5).await;
    // A refused batch (a second topic of one name) is skipped whole by every node alike.
    nodes[&1].quorum.append(vec![MetadataRecord::TopicRecord { name: "t0".into(), topic_id: Uuid::from_u128(77) }]).await.unwrap();
    assert!(!nodes[&1].quorum.image().borrow().topics.contains_key(&Uuid::from_u128(77)));
    for (_, n) in nodes {
        n.stop().await;
    }
}
