//! Topics across three real `ferrite` processes (combined nodes): created through one
//! broker, placed over all three,
//! described the same by every broker, produced through one and consumed through another
//! with librdkafka; a broker that does not lead a partition says who does (KIP-951); a
//! killed leader's partitions are offline until it returns, with their records; groups
//! and transactional ids find one coordinator whichever broker they ask, and the others
//! answer NOT_COORDINATOR; a transaction spans partitions on all three brokers; rskafka
//! finds every partition's leader by itself.

mod common;

use common::cluster::{connect, eventually, Cluster};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, InitProducerIdRequest, InitProducerIdResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::TopicPartitionList;
use std::collections::BTreeMap;
use std::time::Duration;

/// Partition → (leader, leader epoch, replicas, isr, offline, error) as `port` describes `topic`.
type View = BTreeMap<i32, (i32, i32, Vec<i32>, Vec<i32>, Vec<i32>, i16)>;

fn topic_view(port: u16, topic: &str) -> View {
    let mut s = connect(port).expect("the broker accepts connections");
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]))
        .with_allow_auto_topic_creation(false);
    let resp: MetadataResponse = common::raw::call(&mut s, ApiKey::Metadata, 12, &req);
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, (p.leader_id.0, p.leader_epoch, ids(&p.replica_nodes), ids(&p.isr_nodes), ids(&p.offline_replicas), p.error_code)))
        .collect()
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap()
}

fn create(rt: &tokio::runtime::Runtime, bootstrap: &str, name: &str, partitions: i32, rf: i32) -> Result<(), rdkafka::types::RDKafkaErrorCode> {
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    rt.block_on(admin(bootstrap).create_topics([&t], &opts)).unwrap()[0].clone().map(|_| ()).map_err(|(_, e)| e)
}

/// A Produce v11 of one record to `partition`, answered by `port`.
fn raw_produce(port: u16, topic: &str, partition: i32) -> ProduceResponse {
    let record = ferrite::testing::records::record(0, 0, None, Some(bytes::Bytes::from_static(b"v")));
    let batch = ferrite::testing::records::batch(&[record], kafka_protocol::records::Compression::None);
    let req = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch.freeze()))])]);
    let mut s = connect(port).unwrap();
    common::raw::call(&mut s, ApiKey::Produce, 11, &req)
}

fn coordinator(port: u16, key_type: i8, key: &str) -> (i16, i32, i32) {
    let mut s = connect(port).unwrap();
    let req = FindCoordinatorRequest::default().with_key_type(key_type).with_coordinator_keys(vec![StrBytes::from_string(key.into())]);
    let resp: FindCoordinatorResponse = common::raw::call(&mut s, ApiKey::FindCoordinator, 4, &req);
    let c = &resp.coordinators[0];
    (c.error_code, c.node_id.0, c.port)
}

/// Consumes every partition of `topic` from the start through `bootstrap` until `n`
/// records came; returns (partition, value) pairs.
fn consume_all(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> Vec<(i32, String)> {
    let c: BaseConsumer = common::consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < n && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("no consume error");
            got.push((m.partition(), String::from_utf8_lossy(m.payload().unwrap()).into_owned()));
        }
    }
    got
}

#[test]
fn topics_are_spread_over_three_brokers_and_every_broker_answers_for_all_of_them() {
    let mut cluster = Cluster::new("topics");
    cluster.start_all_live();
    let all = cluster.ids();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    // Created through broker 1: six partitions placed round robin over the three.
    create(&rt, &cluster.bootstrap(1), "spread", 6, 1).expect("created");
    let view = eventually("spread known everywhere", Duration::from_secs(10), || all.iter().map(|id| topic_view(cluster.port(*id), "spread")).collect::<Vec<_>>(), |v| v.iter().all(|t| t.len() == 6));
    assert!(view.iter().all(|v| *v == view[0]), "Metadata is the same from every broker: {view:?}");
    let leaders: BTreeMap<i32, i32> = view[0].iter().map(|(p, v)| (*p, v.0)).collect();
    for id in &all {
        assert_eq!(leaders.values().filter(|l| *l == id).count(), 2, "broker {id} leads two of six: {leaders:?}");
    }
    assert!(view[0].values().all(|(l, epoch, replicas, isr, offline, err)| replicas == &vec![*l] && isr == replicas && offline.is_empty() && *epoch == 0 && *err == 0));

    // Three replicas each: all brokers, the first leads, all in sync. Four cannot be placed.
    create(&rt, &cluster.bootstrap(2), "triple", 3, 3).expect("created");
    let triple = eventually("triple known", Duration::from_secs(10), || topic_view(cluster.port(3), "triple"), |v| v.len() == 3);
    for (l, _, replicas, isr, _, _) in triple.values() {
        let mut sorted = replicas.clone();
        sorted.sort();
        assert_eq!((sorted, replicas[0], isr), (all.clone(), *l, replicas));
    }
    assert_eq!(create(&rt, &cluster.bootstrap(3), "quad", 1, 4), Err(rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor));

    // Once CreateTopics answers, every broker lists the partitions and their leaders hold
    // them: a producer starting at once finds none missing (an idempotent producer's
    // refused early batch would otherwise be out of sequence for good). Asked on
    // connections opened before, right after the answer, through each broker in turn.
    for round in 0..6 {
        let via = all[round % 3];
        let name = format!("at-once-{round}");
        let mut conns: Vec<(i32, std::net::TcpStream)> = all.iter().map(|id| (*id, connect(cluster.port(*id)).unwrap())).collect();
        let req = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.clone())))
            .with_num_partitions(64)
            .with_replication_factor(1)]);
        let mut s = connect(cluster.port(via)).unwrap();
        let resp: CreateTopicsResponse = common::raw::call(&mut s, ApiKey::CreateTopics, 7, &req);
        assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
        for (id, conn) in &mut conns {
            let req = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.clone()))))]))
                .with_allow_auto_topic_creation(false);
            let md: MetadataResponse = common::raw::call(conn, ApiKey::Metadata, 12, &req);
            assert_eq!((md.topics[0].error_code, md.topics[0].partitions.len()), (0, 64), "broker {id} lists every partition of {name}, created through {via}, at once");
        }
        let leaders: BTreeMap<i32, i32> = topic_view(cluster.port(via), &name).iter().map(|(p, v)| (*p, v.0)).collect();
        for (p, leader) in leaders {
            let r = raw_produce(cluster.port(leader), &name, p);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "{name}-{p} takes records on its leader {leader} at once");
        }
    }

    // Produced through broker 2 (librdkafka goes to each leader), consumed through broker 3.
    let p = common::producer(&cluster.bootstrap(2), &[("acks", "all")]);
    for i in 0..600 {
        let v = format!("v{i}");
        let part = i % 6;
        p.send(BaseRecord::<(), str>::to("spread").payload(&v).partition(part)).unwrap();
    }
    p.flush(Duration::from_secs(30)).expect("every record acknowledged");
    let got = consume_all(&cluster.bootstrap(3), "spread", 6, 600);
    assert_eq!(got.len(), 600, "every record comes back through another broker");
    for (part, v) in &got {
        let i: i32 = v[1..].parse().unwrap();
        assert_eq!(i % 6, *part, "record {v} in its partition");
    }

    // A broker that does not lead a partition says so, and who does, and where (KIP-951).
    let (&part, &leader) = leaders.iter().find(|(_, l)| **l != 1).unwrap();
    let resp = raw_produce(cluster.port(1), "spread", part);
    let r = &resp.responses[0].partition_responses[0];
    assert_eq!(r.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!((r.current_leader.leader_id.0, r.current_leader.leader_epoch), (leader, 0));
    assert_eq!(resp.node_endpoints.iter().map(|e| (e.node_id.0, e.port as u16)).collect::<Vec<_>>(), vec![(leader, cluster.port(leader))]);
    let resp = raw_produce(cluster.port(leader), "spread", part);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0, "its leader takes it");

    // DescribeLogDirs lists a broker's own replicas only.
    for id in &all {
        let mut s = connect(cluster.port(*id)).unwrap();
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![DescribableLogDirTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("spread")))
            .with_partitions((0..6).collect())]));
        let resp: DescribeLogDirsResponse = common::raw::call(&mut s, ApiKey::DescribeLogDirs, 1, &req);
        let listed: Vec<i32> = resp.results[0].topics[0].partitions.iter().map(|p| p.partition_index).collect();
        let own: Vec<i32> = leaders.iter().filter(|(_, l)| *l == id).map(|(p, _)| *p).collect();
        assert_eq!(listed, own, "broker {id}");
    }

    // Every broker names the same coordinator for a group and for a transactional id.
    for (key_type, key) in [(0i8, "the-group"), (1, "the-txn")] {
        let answers: Vec<_> = all.iter().map(|id| eventually("a coordinator", Duration::from_secs(10), || coordinator(cluster.port(*id), key_type, key), |c| c.0 == 0)).collect();
        assert!(answers.iter().all(|a| *a == answers[0]), "{key}: {answers:?}");
        assert_eq!(answers[0].2 as u16, cluster.port(answers[0].1), "its own address");
    }
    // Any other broker sends the client back to FindCoordinator (NOT_COORDINATOR).
    let (_, group_home, _) = coordinator(cluster.port(1), 0, "the-group");
    let (_, txn_home, _) = coordinator(cluster.port(1), 1, "the-txn");
    for id in &all {
        let mut s = connect(cluster.port(*id)).unwrap();
        let hb = HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("the-group"))).with_generation_id(1).with_member_id(StrBytes::from_static_str("m"));
        let resp: HeartbeatResponse = common::raw::call(&mut s, ApiKey::Heartbeat, 4, &hb);
        let init = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("the-txn"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        // COORDINATOR_LOAD_IN_PROGRESS (14) while the first producer ids are on their way.
        let init: InitProducerIdResponse =
            eventually("InitProducerId answered", Duration::from_secs(10), || common::raw::call(&mut s, ApiKey::InitProducerId, 4, &init), |r: &InitProducerIdResponse| r.error_code != 14);
        let want = |home: i32, other: i16| if *id == home { other } else { 16 };
        assert_eq!(resp.error_code, want(group_home, 25), "broker {id}: Heartbeat (coordinator {group_home}: UNKNOWN_MEMBER_ID)");
        assert_eq!(init.error_code, want(txn_home, 0), "broker {id}: InitProducerId (coordinator {txn_home})");
    }
    let offsets = eventually("__consumer_offsets known", Duration::from_secs(10), || topic_view(cluster.port(1), "__consumer_offsets"), |v| v.len() == 50);
    assert_eq!(offsets.len(), 50, "made through the controller at the first lookup");
    assert!(offsets.values().all(|v| v.2.len() == 3), "offsets.topic.replication.factor 3 over three brokers");

    // A group consumes through its coordinator, wherever it sits, and commits there.
    let group_consumer = |bootstrap: &str| -> BaseConsumer {
        common::consumer(bootstrap, &[("group.id", "the-group"), ("auto.offset.reset", "earliest"), ("enable.auto.commit", "false")])
    };
    let c = group_consumer(&cluster.bootstrap(3));
    c.subscribe(&["spread"]).unwrap();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while n < 601 && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.expect("no consume error");
            n += 1;
        }
    }
    assert_eq!(n, 601, "the group read everything");
    let position = c.position().unwrap();
    c.commit(&position, rdkafka::consumer::CommitMode::Sync).expect("committed at the coordinator");
    // Not dropped: rust-rdkafka's drop of a subscribed BaseConsumer can hang in
    // librdkafka's close (fede1024/rust-rdkafka#453, #597), against any broker; the
    // process exit ends it.
    std::mem::forget(c);
    let again = group_consumer(&cluster.bootstrap(2));
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition("spread", p);
    }
    let committed = again.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets through another broker");
    let total: i64 = committed.elements().iter().map(|e| e.offset().to_raw().unwrap()).sum();
    assert_eq!(total, 601);

    // A killed leader's partitions are offline (leader -1) once it is fenced, and back
    // with every record when it returns.
    let victim = leader;
    cluster.kill9(victim);
    let others: Vec<i32> = all.iter().copied().filter(|id| *id != victim).collect();
    let offline = eventually("its partitions offline", Duration::from_secs(15), || topic_view(cluster.port(others[0]), "spread"), |v| v[&part].0 == -1);
    assert_eq!((offline[&part].4.clone(), offline[&part].5), (vec![victim], 5), "offline replica named, LEADER_NOT_AVAILABLE");
    let live = *leaders.iter().find(|(_, l)| **l == others[0]).unwrap().0;
    // ElectLeaders: nobody else can lead the offline partition yet; the live one needs none.
    let mut s = connect(cluster.port(others[0])).unwrap();
    let elect = ElectLeadersRequest::default().with_election_type(0).with_timeout_ms(5000).with_topic_partitions(Some(vec![TopicPartitions::default()
        .with_topic(TopicName(StrBytes::from_static_str("spread")))
        .with_partitions(vec![part, live])]));
    let elected: ElectLeadersResponse = common::raw::call(&mut s, ApiKey::ElectLeaders, 1, &elect);
    let codes: Vec<i16> = elected.replica_election_results[0].partition_result.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![83, 84], "ELIGIBLE_LEADERS_NOT_AVAILABLE, ELECTION_NOT_NEEDED");
    assert_eq!(raw_produce(cluster.port(others[0]), "spread", live).responses[0].partition_responses[0].error_code, 0, "the others serve on");
    cluster.restart(victim);
    eventually("its partitions back", Duration::from_secs(15), || topic_view(cluster.port(others[1]), "spread"), |v| v[&part].0 == victim);
    let got = consume_all(&cluster.bootstrap(others[1]), "spread", 6, 602);
    assert_eq!(got.len(), 602, "nothing acknowledged was lost");

    // Deleted through a third broker: gone everywhere.
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    rt.block_on(admin(&cluster.bootstrap(3)).delete_topics(&["triple"], &opts)).unwrap()[0].clone().unwrap();
    for id in &all {
        eventually("triple gone", Duration::from_secs(10), || topic_view(cluster.port(*id), "triple"), |v| v.is_empty());
    }

    // rskafka (its own protocol code) bootstrapped from one broker: creates through its
    // controller client, writes and reads each partition at its leader, deletes.
    rt.block_on(rskafka_round_trip(cluster.bootstrap(2)));
}

async fn rskafka_round_trip(bootstrap: String) {
    use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
    let client = rskafka::client::ClientBuilder::new(vec![bootstrap]).build().await.expect("rskafka connects");
    client.controller_client().unwrap().create_topic("rs-spread", 6, 1, 10_000).await.expect("created");
    for p in 0..6 {
        let part = client.partition_client("rs-spread", p, UnknownTopicHandling::Retry).await.unwrap();
        let record = rskafka::record::Record {
            key: None,
            value: Some(format!("rs{p}").into_bytes()),
            headers: BTreeMap::new(),
            timestamp: rskafka::chrono::Utc::now(),
        };
        part.produce(vec![record], Compression::Lz4).await.expect("written at the leader");
        assert_eq!(part.get_offset(OffsetAt::Latest).await.unwrap(), 1);
        let (got, _) = part.fetch_records(0, 1..1_000_000, 1_000).await.unwrap();
        assert_eq!(got[0].record.value.as_deref(), Some(format!("rs{p}").as_bytes()), "partition {p} read back");
    }
    client.controller_client().unwrap().delete_topic("rs-spread", 10_000).await.expect("deleted");
}

/// Consumes every partition of `topic` from the start at `isolation` until `n` records
/// came or a quiet second passed; returns how many came.
fn count(bootstrap: &str, topic: &str, partitions: i32, isolation: &str, n: usize) -> usize {
    let c: BaseConsumer = common::consumer(bootstrap, &[("isolation.level", isolation)]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let (mut got, mut last) = (0, std::time::Instant::now());
    let deadline = last + Duration::from_secs(30);
    while std::time::Instant::now() < deadline && (got < n || last.elapsed() < Duration::from_secs(1)) {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            m.expect("no consume error");
            got += 1;
            last = std::time::Instant::now();
        }
    }
    got
}

#[test]
fn a_transaction_spans_partitions_on_three_brokers_with_its_coordinators_elsewhere() {
    let mut cluster = Cluster::new("txns");
    cluster.start_all_live();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    create(&rt, &cluster.bootstrap(1), "txn-out", 6, 1).expect("created");
    let leaders: Vec<i32> = eventually("txn-out known", Duration::from_secs(10), || topic_view(cluster.port(1), "txn-out"), |v| v.len() == 6).values().map(|v| v.0).collect();
    assert_eq!(leaders.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "partitions on all three brokers: {leaders:?}");

    // A transactional id and a group whose coordinators are not the bootstrap broker.
    let find = |key_type: i8, prefix: &str, avoid: &[i32]| -> (String, i32) {
        (0..200)
            .map(|i| format!("{prefix}-{i}"))
            .find_map(|k| {
                let (err, node, _) = eventually("a coordinator", Duration::from_secs(10), || coordinator(cluster.port(1), key_type, &k), |c| c.0 == 0);
                assert_eq!(err, 0);
                (!avoid.contains(&node)).then_some((k, node))
            })
            .expect("a key coordinated elsewhere")
    };
    let (txn_id, txn_coordinator) = find(1, "txn", &[1]);
    let (group, group_coordinator) = find(0, "grp", &[1, txn_coordinator]);
    assert!(txn_coordinator != 1 && group_coordinator != 1 && group_coordinator != txn_coordinator);

    let p = common::producer(&cluster.bootstrap(1), &[("transactional.id", txn_id.as_str()), ("linger.ms", "1")]);
    p.init_transactions(Duration::from_secs(30)).expect("init_transactions at a coordinator on another broker");
    let group_member = common::consumer(&cluster.bootstrap(1), &[("group.id", group.as_str())]);
    let send = |n: i32, tag: &str| {
        for i in 0..n {
            let v = format!("{tag}-{i}");
            p.send(BaseRecord::<(), str>::to("txn-out").payload(&v).partition(i % 6)).unwrap();
        }
        p.flush(Duration::from_secs(30)).expect("flushed");
    };

    // Committed: markers reach the partitions of all three brokers and the offsets the
    // group's coordinator.
    p.begin_transaction().unwrap();
    send(60, "committed");
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset("txn-out", 0, rdkafka::Offset::Offset(42)).unwrap();
    p.send_offsets_to_transaction(&offsets, &group_member.group_metadata().unwrap(), Duration::from_secs(30)).expect("offsets in the transaction");
    p.commit_transaction(Duration::from_secs(30)).expect("committed");
    assert_eq!(count(&cluster.bootstrap(2), "txn-out", 6, "read_committed", 60), 60, "every committed record, through another broker");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("txn-out", 0);
    let reader = common::consumer(&cluster.bootstrap(3), &[("group.id", group.as_str())]);
    let committed = eventually(
        "the transaction's offsets visible",
        Duration::from_secs(10),
        || reader.committed_offsets(tpl.clone(), Duration::from_secs(10)).unwrap().find_partition("txn-out", 0).unwrap().offset(),
        |o| *o == rdkafka::Offset::Offset(42),
    );
    assert_eq!(committed, rdkafka::Offset::Offset(42));

    // Aborted: in the logs, hidden from read_committed; the next transaction goes on.
    p.begin_transaction().unwrap();
    send(30, "aborted");
    p.abort_transaction(Duration::from_secs(30)).expect("aborted");
    p.begin_transaction().unwrap();
    send(6, "after");
    p.commit_transaction(Duration::from_secs(30)).expect("committed after an abort");
    assert_eq!(count(&cluster.bootstrap(3), "txn-out", 6, "read_committed", 66), 66, "the aborted records hidden");
    assert_eq!(count(&cluster.bootstrap(2), "txn-out", 6, "read_uncommitted", 96), 96, "and in the log");
}
