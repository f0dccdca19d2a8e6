//! What one client's CreateTopics can do to the broker's open files: refused up front past
//! the budget, all-or-nothing when it fails or the broker dies half-way, and never at the
//! cost of new connections (issue 17, item 5). Real broker processes under a lowered
//! `ulimit -n`.

mod common;

use common::process::{free_port, Ferrite, TempDir};
use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// CreateTopics for one topic: (error code, error message).
fn create(bs: &str, name: &str, partitions: i32) -> (i16, String) {
    let mut s = TcpStream::connect(bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let req = CreateTopicsRequest::default().with_timeout_ms(300_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let resp: CreateTopicsResponse = common::raw::call(&mut s, ApiKey::CreateTopics, 5, &req);
    let t = &resp.topics[0];
    (t.error_code, t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

fn api_versions_answered(bs: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(bs) else { return false };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let resp: ApiVersionsResponse = common::raw::call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    resp.error_code == 0 && !resp.api_keys.is_empty()
}

/// Topic name → partition count, read from the data directory as a restart would.
fn partition_dirs(dir: &Path, topic: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().to_string_lossy().to_string();
            n.rsplit_once('-').is_some_and(|(t, p)| t == topic && p.parse::<u32>().is_ok())
        })
        .count()
}

/// What the broker's descriptors point at, by file extension, for a failure message.
fn fd_kinds(broker: &Ferrite) -> String {
    let mut kinds = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{}/fd", broker.child.id())).unwrap() {
        let target = std::fs::read_link(e.unwrap().path()).map(|p| p.display().to_string()).unwrap_or_default();
        let kind: String = target.rsplit('.').next().unwrap_or("").chars().take(12).collect();
        *kinds.entry(kind).or_insert(0) += 1;
    }
    format!("{kinds:?}")
}

const POLICY_VIOLATION: i16 = 44;
const LIMIT: u64 = 500;

#[test]
fn create_topics_past_the_open_file_limit_is_refused_whole_and_the_broker_serves_on() {
    let dir = TempDir::new("fdlimit");
    let port = free_port();
    let broker = Ferrite::start_with_fd_limit(&dir.0, port, &[], LIMIT);
    let bs = broker.bootstrap();

    let (code, message) = create(&bs, "huge", 2_000);
    assert_eq!(code, POLICY_VIOLATION, "{message}");
    assert!(message.contains("ulimit -n") && message.contains(&LIMIT.to_string()), "the message names the limit: {message}");
    assert_eq!(partition_dirs(&dir.0, "huge"), 0, "nothing of the refused topic is on disk");

    // Fill the budget 10 partitions at a time: every creation either succeeds or is refused
    // whole, never half-made with a storage error.
    let mut made = Vec::new();
    loop {
        let name = format!("fill-{}", made.len());
        match create(&bs, &name, 10) {
            (0, _) => made.push(name),
            (POLICY_VIOLATION, _) => break,
            (code, m) => panic!("creating {name} answered {code}: {m}"),
        }
        assert!(made.len() < 100, "the budget should have run out");
    }
    assert!(made.len() >= 5, "only {} topics fit under {LIMIT} open files", made.len());

    // Write every partition enough to open both of its indexes (the costliest a partition gets).
    let p = producer(&bs, &[("acks", "all"), ("linger.ms", "0")]);
    let value = vec![b'x'; 3_000];
    for round in 0..3u8 {
        let key = [round];
        let records = made
            .iter()
            .flat_map(|t| (0..10).map(move |part| (t, part)))
            .map(|(t, part)| BaseRecord::to(t).partition(part).payload(&value[..]).key(&key[..]))
            .collect();
        produce_all(&p, records);
    }
    drop(p);
    let used = broker.open_fds();
    assert!((used as u64) < LIMIT - 32, "written partitions left only {} of {LIMIT} descriptors free: {}", LIMIT as usize - used, fd_kinds(&broker));

    // New connections are still accepted and served.
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&bs).unwrap()).collect();
    assert!(api_versions_answered(&bs), "a new client is served at the limit");
    drop(held);

    // A restart under the same limit loads everything; the refused topic never appears.
    broker.kill9();
    let broker = Ferrite::start_with_fd_limit(&dir.0, port, &[], LIMIT);
    assert_eq!(partition_dirs(&dir.0, "huge"), 0);
    for t in &made {
        assert_eq!(partition_dirs(&dir.0, t), 10);
    }
    let got = consume(&bs, &made[0], &(0..10).collect::<Vec<_>>(), Offset::Beginning, 30, Duration::from_secs(30));
    assert_eq!(got.len(), 30, "every record of a topic made at the limit is served after the restart");
    assert!(api_versions_answered(&bs));
    drop(broker);
}

#[test]
fn a_broker_killed_during_create_topics_comes_back_with_all_of_it_or_none() {
    let dir = TempDir::new("halfcreate");
    let port = free_port();
    for (round, delay_ms) in [150u64, 500, 1_200].into_iter().enumerate() {
        let broker = Ferrite::start(&dir.0, port, &[]);
        let name = format!("wide-{round}");
        let creator = {
            let (bs, name) = (broker.bootstrap(), name.clone());
            std::thread::spawn(move || {
                let _ = std::panic::catch_unwind(|| create(&bs, &name, 3_000));
            })
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        broker.kill9();
        let _ = creator.join();
        let broker = Ferrite::start(&dir.0, port, &[]);
        let on_disk = partition_dirs(&dir.0, &name);
        assert!(on_disk == 0 || on_disk == 3_000, "round {round}: {on_disk} of 3000 partitions survived the crash");
        // The broker agrees with its disk, and the name is usable again if it was undone.
        if on_disk == 0 {
            assert_eq!(create(&broker.bootstrap(), &name, 2).0, 0, "round {round}");
            assert_eq!(partition_dirs(&dir.0, &name), 2);
        } else {
            assert_eq!(create(&broker.bootstrap(), &name, 2).0, 36, "round {round}: TOPIC_ALREADY_EXISTS");
        }
        drop(broker);
    }
}
