//! Three real `ferrite` processes as one KRaft-style cluster (combined mode): they form one metadata
//! quorum, every broker registers and heartbeats, a killed broker is fenced after its
//! session and comes back on restart, and killing the active controller elects another,
//! which goes on creating topics that the killed node learns when it returns.

mod common;

use common::cluster::{cluster_view, eventually, format, node_keys, quorum_view, spawn, start, Node, CLUSTER_ID};
use common::process::{free_port, Ferrite, TempDir};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn three_combined_nodes_form_one_quorum_fence_a_dead_broker_and_survive_the_controller() {
    let nodes: Vec<Node> = (1..=3).map(|id| Node { id, port: free_port(), cport: free_port(), dir: TempDir::new(&format!("cluster-{id}")) }).collect();
    let voters = nodes.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cport)).collect::<Vec<_>>().join(",");
    // Unformatted, a node of a cluster refuses to start rather than invent its own id.
    let keys = node_keys(&nodes[0], &voters);
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"));
    c.args(["--data-dir", nodes[0].dir.0.to_str().unwrap()]);
    for (k, v) in &keys {
        c.args(["--override", &format!("{k}={v}")]);
    }
    let refused = c.output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("ferrite format"), "{refused:?}");
    for n in &nodes[..2] {
        let out = format(n, &voters, CLUSTER_ID);
        assert!(out.status.success(), "{out:?}");
        assert!(format(n, &voters, CLUSTER_ID).status.success(), "formatting again with the same id is fine");
        assert!(!format(n, &voters, "AAAAAAAAAAAAAAAAAAAAAA").status.success(), "another cluster's id is refused");
    }
    let mut running: BTreeMap<i32, Ferrite> = nodes.iter().map(|n| (n.id, spawn(n, &voters))).collect();
    running.values().for_each(Ferrite::wait_serving);
    for n in &nodes {
        let meta = std::fs::read_to_string(n.dir.0.join("meta.properties")).unwrap();
        assert!(meta.contains(&format!("cluster.id={CLUSTER_ID}")), "node {}: {meta}", n.id);
    }
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
    // Topics are still created, through the broker that is not the new controller, and
    // placed over the two live brokers only.
    let follower = *rest.iter().find(|id| **id != next).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{}", port(follower))).create().unwrap();
    let t = rdkafka::admin::NewTopic::new("after-failover", 4, rdkafka::admin::TopicReplication::Fixed(2));
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    rt.block_on(admin.create_topics([&t], &opts)).unwrap()[0].clone().expect("created after the controller died");
    let replicas = |id: i32| -> Vec<i32> {
        let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{}", port(id))).create().unwrap();
        let md = c.fetch_metadata(Some("after-failover"), Duration::from_secs(10)).unwrap();
        let mut r: Vec<i32> = md.topics()[0].partitions().iter().flat_map(|p| p.replicas().to_vec()).collect();
        r.sort();
        r.dedup();
        r
    };
    assert_eq!(replicas(next), rest, "placed over the live brokers");
    running.insert(leader, start(&nodes[leader as usize - 1], &voters));
    for id in &all {
        eventually("all three again", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == all);
        assert_eq!(quorum_view(port(*id)).0, next, "the new leader stays");
    }
    // The restarted node learned the topic made while it was dead.
    eventually("the topic on the restarted node", Duration::from_secs(15), || replicas(leader), |r| *r == rest);
}
