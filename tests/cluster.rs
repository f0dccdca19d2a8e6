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
        let Ok(md) = c.fetch_metadata(Some("after-failover"), Duration::from_secs(10)) else { return Vec::new() };
        let mut r: Vec<i32> = md.topics()[0].partitions().iter().flat_map(|p| p.replicas().to_vec()).collect();
        r.sort();
        r.dedup();
        r
    };
    eventually("placed over the live brokers", Duration::from_secs(10), || replicas(next), |r| *r == rest);
    running.insert(leader, start(&nodes[leader as usize - 1], &voters));
    for id in &all {
        eventually("all three again", Duration::from_secs(15), || cluster_view(port(*id)).0, |b| *b == all);
        assert_eq!(quorum_view(port(*id)).0, next, "the new leader stays");
    }
    // The restarted node learned the topic made while it was dead.
    eventually("the topic on the restarted node", Duration::from_secs(15), || replicas(leader), |r| *r == rest);
}

/// A broker-only node (KRaft's observer) joins three combined nodes: it registers, serves
/// and leads its share of new partitions, answers DescribeQuorum from the voters' view,
/// and follows a new active controller when the old one dies.
#[test]
fn a_broker_only_node_joins_the_cluster_and_follows_the_quorum() {
    let mut cluster = common::cluster::Cluster::new("observer");
    cluster.start_all();
    let extra = Node { id: 4, port: free_port(), cport: 0, dir: TempDir::new("observer-4") };
    let mut broker4 = Some(common::cluster::start_broker_only(&extra, &cluster.voters));
    let all = vec![1, 2, 3, 4];
    for port in [cluster.port(1), extra.port] {
        eventually("four live brokers", Duration::from_secs(30), || cluster_view(port).0, |b| *b == all);
    }
    let (leader, voters) = eventually("the quorum seen from the observer", Duration::from_secs(10), || quorum_view(extra.port), |v| v.0 > 0);
    assert_eq!(voters, vec![1, 2, 3], "the observer does not vote");
    assert_eq!(quorum_view(cluster.port(1)).0, leader);

    // Topics through the observer: placed over all four, served by it for its share.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bootstrap4 = format!("127.0.0.1:{}", extra.port);
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    // A client of its own each time: librdkafka sends CreateTopics to the controller it
    // last heard of, and a client that knew the killed one waits for it.
    let create = |name: &str| {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap4).create().unwrap();
        let t = rdkafka::admin::NewTopic::new(name, 8, rdkafka::admin::TopicReplication::Fixed(1));
        rt.block_on(admin.create_topics([&t], &opts)).unwrap()[0].clone().expect("created through the observer");
    };
    create("wide");
    let leaders = |port: u16, topic: &str| -> Vec<i32> {
        let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{port}")).create().unwrap();
        let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(10)) else { return Vec::new() };
        let mut l: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.leader()).collect();
        l.sort();
        l
    };
    // Another broker learns of the topic a moment later.
    eventually("wide placed over all four", Duration::from_secs(10), || leaders(cluster.port(2), "wide"), |l| *l == vec![1, 1, 2, 2, 3, 3, 4, 4]);
    let p = common::producer(&bootstrap4, &[("acks", "all")]);
    for i in 0..80 {
        let v = format!("v{i}");
        p.send(rdkafka::producer::BaseRecord::<(), str>::to("wide").payload(&v).partition(i % 8)).unwrap();
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).expect("acknowledged");
    let got = common::consume(&cluster.bootstrap(3), "wide", &(0..8).collect::<Vec<_>>(), rdkafka::Offset::Beginning, 80, Duration::from_secs(30));
    assert_eq!(got.len(), 80, "every record, produced through the observer, back through a voter");

    // The active controller dies: the observer follows the new one and creates through it.
    cluster.kill9(leader);
    let live_voter = *[1, 2, 3].iter().find(|id| **id != leader).unwrap();
    eventually("a new leader among the voters", Duration::from_secs(15), || quorum_view(cluster.port(live_voter)), |v| v.0 > 0 && v.0 != leader);
    let (next, _) = eventually("a new leader seen by the observer", Duration::from_secs(15), || quorum_view(extra.port), |v| v.0 > 0 && v.0 != leader);
    assert_ne!(next, leader);
    create("after");
    eventually("four minus the dead controller", Duration::from_secs(15), || cluster_view(extra.port).0, |b| b.len() == 3 && b.contains(&4));
    // And the observer, restarted, comes back.
    broker4.take().unwrap().kill9();
    let _broker4 = common::cluster::start_broker_only(&extra, &cluster.voters);
    eventually("the observer back", Duration::from_secs(15), || cluster_view(cluster.port(next)).0, |b| b.contains(&4));
    eventually("the observer knows the topic made while it was away", Duration::from_secs(10), || leaders(extra.port, "after").len(), |n| *n == 8);
}

/// Kafka's split deployment: three controller-only nodes are the quorum, two broker-only
/// nodes serve the clients. The controllers are not brokers (no client listener, absent
/// from Metadata, no partitions in their directories); topics are created through one
/// broker and used through the other; when the active controller dies another is elected,
/// and the dead one, restarted, votes again (the quorum then survives losing a second).
#[test]
fn controller_only_nodes_run_the_quorum_for_broker_only_nodes() {
    use common::cluster::{spawn_controller_only, start_broker_only};
    let controllers: Vec<Node> = (1..=3).map(|id| Node { id, port: 0, cport: free_port(), dir: TempDir::new(&format!("split-{id}")) }).collect();
    let voters = controllers.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cport)).collect::<Vec<_>>().join(",");
    let mut running: BTreeMap<i32, Ferrite> = controllers.iter().map(|n| (n.id, spawn_controller_only(n, &voters))).collect();
    let brokers: Vec<Node> = (4..=5).map(|id| Node { id, port: free_port(), cport: 0, dir: TempDir::new(&format!("split-{id}")) }).collect();
    let _running_brokers: Vec<Ferrite> = brokers.iter().map(|n| start_broker_only(n, &voters)).collect();
    let (p4, p5) = (brokers[0].port, brokers[1].port);
    for port in [p4, p5] {
        let (ids, controller) = eventually("the two brokers, and no controller, listed", Duration::from_secs(30), || cluster_view(port), |v| v.0 == vec![4, 5]);
        assert!(ids.contains(&controller), "clients are pointed at a broker as the controller, not at {controller}");
    }
    let (leader, seen_voters) = eventually("a led quorum", Duration::from_secs(15), || quorum_view(p4), |v| v.0 > 0);
    assert_eq!((seen_voters, (1..=3).contains(&leader)), (vec![1, 2, 3], true), "the controllers are the voters");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let create = |name: &str| {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{p4}")).create().unwrap();
        let t = rdkafka::admin::NewTopic::new(name, 4, rdkafka::admin::TopicReplication::Fixed(2));
        let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
        rt.block_on(admin.create_topics([&t], &opts)).unwrap()[0].clone().expect("created through a broker")
    };
    let produce_and_read = |topic: &str| {
        let p = common::producer(&format!("127.0.0.1:{p4}"), &[("acks", "all"), ("enable.idempotence", "true")]);
        for i in 0..40 {
            let v = format!("v{i}");
            p.send(rdkafka::producer::BaseRecord::<(), str>::to(topic).payload(&v).partition(i % 4)).unwrap();
        }
        rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).expect("acknowledged");
        let got = common::consume(&format!("127.0.0.1:{p5}"), topic, &[0, 1, 2, 3], rdkafka::Offset::Beginning, 40, Duration::from_secs(30));
        assert_eq!(got.len(), 40, "{topic}: every record, produced through broker 4, back through broker 5");
    };
    create("split");
    produce_and_read("split");
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{p5}")).create().unwrap();
    let md = c.fetch_metadata(Some("split"), Duration::from_secs(10)).unwrap();
    for p in md.topics()[0].partitions() {
        let mut replicas = p.replicas().to_vec();
        replicas.sort();
        assert_eq!(replicas, vec![4, 5], "only brokers hold replicas");
    }
    for n in &controllers {
        let entries: Vec<String> = std::fs::read_dir(&n.dir.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(entries.iter().all(|e| !e.starts_with("split-")), "controller {} holds no partitions: {entries:?}", n.id);
        assert!(entries.iter().any(|e| e == "meta.properties"), "controller {} is formatted: {entries:?}", n.id);
    }

    // The active controller dies: another is elected, and the brokers create through it.
    running.remove(&leader).unwrap().kill9();
    let (next, _) = eventually("a new active controller", Duration::from_secs(15), || quorum_view(p4), |v| v.0 > 0 && v.0 != leader);
    create("after-failover");
    produce_and_read("after-failover");
    // Restarted, the old one votes again: without it, losing the new leader would leave
    // one voter of three, and nothing could be created.
    let old = controllers.iter().find(|n| n.id == leader).unwrap();
    running.insert(leader, spawn_controller_only(old, &voters));
    eventually("the restarted controller caught up with the metadata log", Duration::from_secs(20), || common::cluster::quorum_offsets(p4), |(hw, leos)| {
        *hw > 0 && leos.get(&leader).is_some_and(|leo| leo >= hw)
    });
    running.remove(&next).unwrap().kill9();
    eventually("a third active controller", Duration::from_secs(20), || quorum_view(p5), |v| v.0 > 0 && v.0 != next);
    create("after-second-failover");
    produce_and_read("after-second-failover");
}

/// `kill -<sig>` to the node's process (STOP freezes it, CONT lets it run on).
fn signal(f: &Ferrite, sig: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{sig}"), &f.child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// A topic of three partitions, one led by each broker, created through `port`:
/// partition → leader.
fn one_per_broker(port: u16, name: &str) -> BTreeMap<i32, i32> {
    use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
    use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, TopicName};
    let topic = CreatableTopic::default()
        .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(name.into())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments((0..3).map(|p| CreatableReplicaAssignment::default().with_partition_index(p).with_broker_ids(vec![BrokerId(p + 1)])).collect());
    let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![topic]);
    let resp: CreateTopicsResponse = common::raw::call(&mut common::cluster::connect(port).unwrap(), ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
    (0..3).map(|p| (p, p + 1)).collect()
}

/// Processes frozen by SIGSTOP (a long GC pause, a stalled VM) past their session: a
/// paused broker is fenced and its partitions go offline, and it is back, unfenced, once
/// it runs again; a paused active controller is replaced by an election, and when it
/// resumes it follows the new one — there is never a second active controller, and admin
/// calls through it reach the new one.
#[test]
fn paused_nodes_are_fenced_and_a_paused_controller_is_replaced_without_a_second_one() {
    const SIGSTOP: &str = "STOP";
    const SIGCONT: &str = "CONT";
    let mut cluster = common::cluster::Cluster::new("pause");
    cluster.start_all_live();
    let all = cluster.ids();
    let (leader, _) = eventually("a led quorum", Duration::from_secs(10), || quorum_view(cluster.port(1)), |v| v.0 > 0);
    let leaders = one_per_broker(cluster.port(leader), "paused");
    // Whether one record's delivery to `partition` is acknowledged (its delivery report).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let produce_ok = |port: u16, partition: i32| {
        let p: rdkafka::producer::FutureProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{port}")).set("message.timeout.ms", "4000").create().unwrap();
        let record = rdkafka::producer::FutureRecord::<(), str>::to("paused").payload("x").partition(partition);
        rt.block_on(p.send(record, Duration::from_secs(15))).is_ok()
    };

    // A broker that is not the controller freezes: fenced after its session (2 s).
    let frozen = *all.iter().find(|id| **id != leader).unwrap();
    let witness = *all.iter().find(|id| **id != leader && **id != frozen).unwrap();
    signal(&cluster.running[&frozen], SIGSTOP);
    let without: Vec<i32> = all.iter().copied().filter(|id| *id != frozen).collect();
    eventually("the frozen broker fenced", Duration::from_secs(10), || cluster_view(cluster.port(witness)).0, |b| *b == without);
    let its_partition = *leaders.iter().find(|(_, l)| **l == frozen).unwrap().0;
    assert!(!produce_ok(cluster.port(witness), its_partition), "the frozen broker's partition takes nothing");
    assert!(produce_ok(cluster.port(witness), *leaders.iter().find(|(_, l)| **l == witness).unwrap().0), "the others serve on");
    signal(&cluster.running[&frozen], SIGCONT);
    eventually("the resumed broker unfenced", Duration::from_secs(10), || cluster_view(cluster.port(witness)).0, |b| *b == all);
    assert!(produce_ok(cluster.port(witness), its_partition), "its partition is online again");

    // The active controller freezes: the other two elect one of themselves.
    signal(&cluster.running[&leader], SIGSTOP);
    let others: Vec<i32> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, _) = eventually("a new active controller", Duration::from_secs(15), || quorum_view(cluster.port(others[0])), |v| v.0 > 0 && v.0 != leader);
    assert_eq!(quorum_view(cluster.port(others[1])).0, next, "both others name it");
    eventually("the frozen controller's broker fenced", Duration::from_secs(10), || cluster_view(cluster.port(next)).0, |b| *b == others);
    one_per_broker(cluster.port(others[1]), "while-paused");
    // Resumed, it learns of the newer term and follows: one active controller only.
    signal(&cluster.running[&leader], SIGCONT);
    eventually("the old controller follows the new one", Duration::from_secs(15), || quorum_view(cluster.port(leader)).0, |l| *l == next);
    for id in &all {
        assert_eq!(quorum_view(cluster.port(*id)).0, next, "node {id} names one active controller");
    }
    eventually("all three unfenced", Duration::from_secs(10), || cluster_view(cluster.port(next)).0, |b| *b == all);
    // An admin call through the old controller reaches the new one; the topic made while
    // it was frozen is known to it.
    one_per_broker(cluster.port(leader), "after-resume");
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{}", cluster.port(leader))).create().unwrap();
    let md = c.fetch_metadata(Some("while-paused"), Duration::from_secs(10)).unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
    assert!(produce_ok(cluster.port(leader), *leaders.iter().find(|(_, l)| **l == leader).unwrap().0), "its own partition serves again");
}
