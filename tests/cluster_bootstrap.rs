//! Quorums configured the KIP-853 way, with `controller.quorum.bootstrap.servers` instead
//! of `controller.quorum.voters`, as Kafka 4's own `server.properties` does: the voters
//! are fixed by `ferrite format --standalone` or `--initial-controllers`, and broker-only
//! nodes learn them from the bootstrap controllers.

mod common;

use common::cluster::{cluster_view, eventually, quorum_view, CLUSTER_ID};
use common::process::{free_port, Ferrite, TempDir};
use std::time::Duration;

fn ferrite_cmd(dir: &TempDir, keys: &[(String, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"));
    c.args(["--data-dir", dir.0.to_str().unwrap()]);
    for (k, v) in keys {
        c.args(["--override", &format!("{k}={v}")]);
    }
    c
}

fn keys(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Kafka 4's combined-node keys (its config/server.properties), on our ports.
fn combined(id: i32, port: u16, cport: u16, bootstrap: &str) -> Vec<(String, String)> {
    keys(&[
        ("process.roles", "broker,controller".into()),
        ("node.id", id.to_string()),
        ("controller.quorum.bootstrap.servers", bootstrap.into()),
        ("listeners", format!("PLAINTEXT://:{port},CONTROLLER://:{cport}")),
        ("advertised.listeners", format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}")),
        ("inter.broker.listener.name", "PLAINTEXT".into()),
        ("controller.listener.names", "CONTROLLER".into()),
        ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL".into()),
        ("offsets.topic.replication.factor", "1".into()),
        ("transaction.state.log.replication.factor", "1".into()),
        ("controller.quorum.election.timeout.ms", "500".into()),
        ("broker.session.timeout.ms", "2000".into()),
        ("broker.heartbeat.interval.ms", "300".into()),
    ])
}

fn spawn(dir: &TempDir, port: u16, k: &[(String, String)]) -> Ferrite {
    let k: Vec<(&str, &str)> = k.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Ferrite::spawn_with_env(&dir.0, port, &k, &[])
}

#[test]
fn a_standalone_controller_from_kafka_4_keys_and_a_broker_that_knows_only_the_bootstrap_servers() {
    let (dir1, port1, cport1) = (TempDir::new("standalone-1"), free_port(), free_port());
    let node1 = combined(1, port1, cport1, &format!("127.0.0.1:{cport1}"));
    // Formatted without a voter set, it says how to make one.
    assert!(ferrite_cmd(&dir1, &node1).args(["format", "--cluster-id", CLUSTER_ID]).status().unwrap().success());
    let refused = ferrite_cmd(&dir1, &node1).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("--standalone") && err.contains("--initial-controllers"), "{err}");
    // --standalone: this node is the voter.
    let out = ferrite_cmd(&dir1, &node1).args(["format", "--cluster-id", CLUSTER_ID, "--standalone"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let bad = ferrite_cmd(&dir1, &node1).args(["format", "--cluster-id", CLUSTER_ID, "--initial-controllers", "1@h:1", "--standalone"]).output().unwrap();
    assert!(!bad.status.success(), "--standalone and --initial-controllers exclude each other");
    let n1 = spawn(&dir1, port1, &node1);
    n1.wait_serving();

    // A broker-only node given only the bootstrap servers: it asks them for the voters.
    let (dir2, port2) = (TempDir::new("standalone-2"), free_port());
    let node2 = keys(&[
        ("process.roles", "broker".into()),
        ("node.id", "2".into()),
        ("controller.quorum.bootstrap.servers", format!("127.0.0.1:{cport1}")),
        ("listeners", format!("PLAINTEXT://127.0.0.1:{port2}")),
        ("controller.listener.names", "CONTROLLER".into()),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into()),
        ("broker.session.timeout.ms", "2000".into()),
        ("broker.heartbeat.interval.ms", "300".into()),
    ]);
    let standalone_for_a_broker = ferrite_cmd(&dir2, &node2).args(["format", "--cluster-id", CLUSTER_ID, "--standalone"]).output().unwrap();
    assert!(!standalone_for_a_broker.status.success(), "a broker-only node is not a voter");
    assert!(ferrite_cmd(&dir2, &node2).args(["format", "--cluster-id", CLUSTER_ID]).status().unwrap().success());
    let n2 = spawn(&dir2, port2, &node2);
    n2.wait_serving();
    for port in [port1, port2] {
        eventually("both brokers", Duration::from_secs(20), || cluster_view(port).0, |b| *b == vec![1, 2]);
        assert_eq!(quorum_view(port), (1, vec![1]), "one voter, node 1");
    }
    // Topics through the broker-only node, spread over both, read back through node 1.
    common::create_topic(&n2.bootstrap(), "boot", 4, &[]);
    let p = common::producer(&n2.bootstrap(), &[("acks", "all")]);
    let v = vec![7u8; 10];
    common::produce_all(&p, (0..40).map(|i| rdkafka::producer::BaseRecord::<[u8], [u8]>::to("boot").payload(&v[..]).partition(i % 4)).collect());
    let got = common::consume(&n1.bootstrap(), "boot", &[0, 1, 2, 3], rdkafka::Offset::Beginning, 40, Duration::from_secs(30));
    assert_eq!(got.len(), 40);
}

#[test]
fn initial_controllers_make_a_three_voter_quorum_that_survives_its_leader() {
    let nodes: Vec<(TempDir, u16, u16)> = (1..=3).map(|id| (TempDir::new(&format!("initial-{id}")), free_port(), free_port())).collect();
    let initial = nodes.iter().enumerate().map(|(i, (_, _, c))| format!("{}@127.0.0.1:{c}:AAAAAAAAAAAAAAAAAAAAAA", i + 1)).collect::<Vec<_>>().join(",");
    // Each node knows only node 1's controller port, as a Kafka 4 config may.
    let bootstrap = format!("127.0.0.1:{}", nodes[0].2);
    let configs: Vec<Vec<(String, String)>> = nodes.iter().enumerate().map(|(i, (_, p, c))| combined(i as i32 + 1, *p, *c, &bootstrap)).collect();
    for ((dir, _, _), cfg) in nodes.iter().zip(&configs) {
        let out = ferrite_cmd(dir, cfg).args(["format", "--cluster-id", CLUSTER_ID, "--initial-controllers", &initial]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let mut running: Vec<Option<Ferrite>> = nodes.iter().zip(&configs).map(|((dir, port, _), cfg)| Some(spawn(dir, *port, cfg))).collect();
    running.iter().flatten().for_each(Ferrite::wait_serving);
    let port = |id: i32| nodes[id as usize - 1].1;
    let (leader, voters) = eventually("a led quorum of three", Duration::from_secs(20), || quorum_view(port(1)), |v| v.0 > 0);
    assert_eq!(voters, vec![1, 2, 3]);
    for id in 1..=3 {
        eventually("three brokers", Duration::from_secs(20), || cluster_view(port(id)).0, |b| *b == vec![1, 2, 3]);
    }
    running[leader as usize - 1].take().unwrap().kill9();
    let live = if leader == 1 { 2 } else { 1 };
    eventually("another leader", Duration::from_secs(20), || quorum_view(port(live)).0, |l| *l > 0 && *l != leader);
    common::create_topic(&format!("127.0.0.1:{}", port(live)), "after", 2, &[]);
}
