//! The `ferrite` image through the testcontainers module: a produce/consume round trip and
//! a consumer group, with librdkafka (rdkafka crate) on the host. Needs the image
//! (`docker/build`) and a Docker engine; `compat-tests/run-all` provides both and fails if
//! either is missing.

mod common;

use common::*;
use ferrite::testing::Ferrite;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_and_a_consumer_group_through_the_image() {
    let started = Instant::now();
    let kafka = Ferrite::default()
        .with_config("group.initial.rebalance.delay.ms", "0")
        .start()
        .await
        .expect("the ferrite image runs (build it with docker/build)");
    eprintln!("container ready in {:?}", started.elapsed());
    let bs = kafka.bootstrap().to_string();
    tokio::task::spawn_blocking(move || {
        create_topic(&bs, "through-docker", 3, &[]);
        let p = producer(&bs, &[]);
        let values: Vec<String> = (0..300).map(|i| format!("value-{i}")).collect();
        produce_all(
            &p,
            values.iter().enumerate().map(|(i, v)| BaseRecord::to("through-docker").partition((i % 3) as i32).key(v.as_bytes()).payload(v.as_bytes())).collect(),
        );
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "docker-group")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        c.subscribe(&["through-docker"]).unwrap();
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.len() < 300 && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                c.commit_message(&m, CommitMode::Sync).unwrap();
            }
        }
        assert_eq!(got, values.into_iter().collect::<BTreeSet<_>>());
        let assigned = c.assignment().unwrap().count();
        assert_eq!(assigned, 3, "the group member owns every partition");
        let committed = c.committed(Duration::from_secs(10)).unwrap();
        let total: i64 = committed.elements().iter().map(|e| e.offset().to_raw().unwrap_or(0)).sum();
        assert_eq!(total, 300, "offsets committed through the container");
    })
    .await
    .unwrap();
    let mut health = kafka.container().exec(testcontainers::core::ExecCommand::new(["/ferrite", "--healthcheck"])).await.unwrap();
    let _ = health.stderr_to_vec().await.unwrap(); // runs the command to its end
    assert_eq!(health.exit_code().await.unwrap(), Some(0), "the image's health check passes");
    // `docker stop` sends SIGTERM (the image's STOPSIGNAL): a clean stop, exit code 0.
    kafka.container().stop_with_timeout(Some(10)).await.unwrap();
    assert_eq!(kafka.container().exit_code().await.unwrap(), Some(0));
    let logs = String::from_utf8_lossy(&kafka.container().stderr_to_vec().await.unwrap()).into_owned();
    assert!(logs.contains("ferrite stopped cleanly"), "{logs}");
}

/// Stops the compose project however the test ends.
struct ComposeDown(&'static str);

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker-compose")
            .args(["-p", self.0, "-f", "docker/compose-cluster.yaml", "down", "-v", "--timeout", "5"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output();
    }
}

/// `docker/compose-cluster.yaml`: three containers of the image form one metadata quorum,
/// a client bootstrapped from any one of them sees all three brokers, and a topic created
/// through one is produced through another and consumed through the third.
#[test]
fn the_compose_cluster_forms_one_quorum() {
    let project = "ferrite-compose-test";
    let _down = ComposeDown(project);
    let up = std::process::Command::new("docker-compose")
        .args(["-p", project, "-f", "docker/compose-cluster.yaml", "up", "-d"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("docker-compose is installed (compat-tests/setup)");
    assert!(up.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&up.stderr));
    for port in [19092, 29092, 39092] {
        let bs = format!("localhost:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
            let brokers: BTreeSet<i32> =
                c.fetch_metadata(None, Duration::from_secs(5)).map(|m| m.brokers().iter().map(|b| b.id()).collect()).unwrap_or_default();
            if brokers == BTreeSet::from([1, 2, 3]) {
                break;
            }
            assert!(Instant::now() < deadline, "{bs} sees brokers {brokers:?}, not 1, 2 and 3");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", "localhost:19092").create().unwrap();
    let topic = rdkafka::admin::NewTopic::new("spread", 3, rdkafka::admin::TopicReplication::Fixed(1));
    let created = rt.block_on(admin.create_topics([&topic], &rdkafka::admin::AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    // The third container learns of the topic a moment later.
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", "localhost:39092").create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let leaders = loop {
        let md = c.fetch_metadata(Some("spread"), Duration::from_secs(10)).unwrap();
        let leaders: BTreeSet<i32> = md.topics()[0].partitions().iter().map(|p| p.leader()).filter(|l| *l >= 0).collect();
        if leaders.len() == 3 || Instant::now() > deadline {
            break leaders;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "one partition on each container");
    let p: rdkafka::producer::BaseProducer = ClientConfig::new().set("bootstrap.servers", "localhost:29092").create().unwrap();
    for i in 0..30 {
        let v = format!("v{i}");
        p.send(rdkafka::producer::BaseRecord::<(), str>::to("spread").payload(&v).partition(i % 3)).unwrap();
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).expect("acknowledged by every leader");
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", "localhost:39092").set("group.id", "unused").create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for part in 0..3 {
        tpl.add_partition_offset("spread", part, rdkafka::Offset::Beginning).unwrap();
    }
    rdkafka::consumer::Consumer::assign(&c, &tpl).unwrap();
    let (mut got, deadline) = (0, Instant::now() + Duration::from_secs(30));
    while got < 30 && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.expect("no consume error");
            got += 1;
        }
    }
    assert_eq!(got, 30, "every record back through the third container");
}
