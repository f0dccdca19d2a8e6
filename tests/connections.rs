//! Connection limits and idle expiry, as Kafka names them: `connections.max.idle.ms`
//! closes connections that complete no request (a byte a second is not a request),
//! `max.connections.per.ip` (with overrides) closes one connection too many from an
//! address, `max.connections` makes new connections wait until a slot frees up.

mod common;

use common::raw::{read_response, request};
use ferrite::testing::EmbeddedBroker;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// These tests time round trips and fill memory: one at a time, so none slows another.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn connect(bs: &str) -> TcpStream {
    let s = TcpStream::connect(bs).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// One ApiVersions round trip; false when the broker closed the connection or did not answer.
fn answered(s: &mut TcpStream) -> bool {
    s.write_all(&request(ApiKey::ApiVersions, 0, 7, &ApiVersionsRequest::default())).is_ok() && read_response(s).is_some()
}

/// Whether the broker closed `s` within `within` (a read sees the end of the stream).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0)) || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn idle_and_trickling_connections_are_closed_busy_ones_stay() {
    let _serial = serial();
    let broker = EmbeddedBroker::start_with(&[("connections.max.idle.ms", "1000")]);
    let bs = broker.bootstrap();
    let mut silent = connect(&bs);
    let mut trickle = connect(&bs);
    let mut busy = connect(&bs);
    let start = Instant::now();
    // A frame that claims 100 bytes, sent one byte every 200 ms.
    let frame = [0u8, 0, 0, 100];
    let mut sent = 0;
    let mut trickle_closed = false;
    while start.elapsed() < Duration::from_millis(3_000) {
        assert!(answered(&mut busy), "a connection with requests stays open");
        if !trickle_closed {
            let byte = if sent < 4 { frame[sent] } else { 0 };
            trickle_closed = trickle.write_all(&[byte]).is_err();
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed_within(&mut silent, Duration::from_secs(2)), "a silent connection is closed");
    assert!(closed_within(&mut trickle, Duration::from_secs(2)), "a trickling connection is closed");
    assert!(answered(&mut busy));
}

#[test]
fn one_connection_too_many_from_an_address_is_closed() {
    let _serial = serial();
    let broker = EmbeddedBroker::start_with(&[("max.connections.per.ip", "3")]);
    let bs = broker.bootstrap();
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(&bs)).collect();
    for s in &mut held {
        assert!(answered(s));
    }
    let mut extra = connect(&bs);
    assert!(!answered(&mut extra), "the fourth connection is closed");
    drop(held.pop());
    // The freed slot is taken by the next connection (the close may take a moment to be seen).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !answered(&mut connect(&bs)) {
        assert!(Instant::now() < deadline, "a slot freed by a closed connection is reused");
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in &mut held {
        assert!(answered(s), "the others were never disturbed");
    }
}

#[test]
fn per_address_overrides_raise_the_limit() {
    let _serial = serial();
    let broker = EmbeddedBroker::start_with(&[("max.connections.per.ip", "1"), ("max.connections.per.ip.overrides", "127.0.0.1:4")]);
    let bs = broker.bootstrap();
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(&bs)).collect();
    assert!(held.iter_mut().all(answered));
    assert!(!answered(&mut connect(&bs)));
}

#[test]
fn past_max_connections_new_ones_wait_for_a_slot() {
    let _serial = serial();
    let broker = EmbeddedBroker::start_with(&[("max.connections", "2")]);
    let bs = broker.bootstrap();
    let mut a = connect(&bs);
    let mut b = connect(&bs);
    assert!(answered(&mut a) && answered(&mut b));
    let mut waiting = connect(&bs);
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    waiting.write_all(&request(ApiKey::ApiVersions, 0, 7, &ApiVersionsRequest::default())).unwrap();
    assert!(read_response(&mut waiting).is_none(), "not served while two connections are open");
    drop(a);
    waiting.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(read_response(&mut waiting).is_some(), "served once a slot is free");
    assert!(answered(&mut b));
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb * 1024
}

#[test]
fn twenty_huge_partial_requests_stay_within_the_request_pool() {
    let _serial = serial();
    use common::process::{free_port, Ferrite, TempDir};
    const POOL: u64 = 128 << 20;
    let dir = TempDir::new("pool");
    let f = Ferrite::start(&dir.0, free_port(), &[("queued.max.request.bytes", &POOL.to_string())]);
    let bs = f.bootstrap();
    let base = rss(f.child.id());
    // Each claims a 100 MB request and sends 90 MB of it, then stops.
    let senders: Vec<_> = (0..20)
        .map(|_| {
            let bs = bs.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&bs).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                s.write_all(&100_000_000i32.to_be_bytes()).unwrap();
                let chunk = vec![0u8; 1 << 20];
                for _ in 0..90 {
                    if s.write_all(&chunk).is_err() {
                        break; // the broker is not reading this one: its buffers are full
                    }
                }
                s // kept open, the request never completed
            })
        })
        .collect();
    let held: Vec<TcpStream> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let grown = rss(f.child.id()).saturating_sub(base);
    assert!(grown < POOL + (64 << 20), "RSS grew by {} MiB with a {} MiB pool", grown >> 20, POOL >> 20);
    // Meanwhile a small request from anyone else is served at once.
    let mut other = connect(&bs);
    let t = Instant::now();
    assert!(answered(&mut other));
    assert!(t.elapsed() < Duration::from_millis(100), "ApiVersions took {:?} while the pool was full", t.elapsed());
    drop(held);
}

#[test]
fn a_five_thousand_partition_create_topics_does_not_stall_other_clients() {
    let _serial = serial();
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    let mut ping = connect(&bs);
    assert!(answered(&mut ping));
    let creator = {
        let bs = bs.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&bs).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
            let req = CreateTopicsRequest::default().with_timeout_ms(300_000).with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("wide")))
                .with_num_partitions(5_000)
                .with_replication_factor(1)]);
            let resp: CreateTopicsResponse = common::raw::call(&mut s, ApiKey::CreateTopics, 5, &req);
            resp.topics[0].error_code
        })
    };
    let mut worst = Duration::ZERO;
    let mut rounds = 0;
    while !creator.is_finished() {
        let t = Instant::now();
        assert!(answered(&mut ping));
        worst = worst.max(t.elapsed());
        rounds += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(creator.join().unwrap(), 0, "the topic was created");
    assert!(rounds > 5, "the creation took long enough to measure ({rounds} round trips)");
    assert!(worst < Duration::from_millis(100), "an ApiVersions round trip took {worst:?} during the creation");
    assert_eq!(broker.broker().state().logs.topic("wide").unwrap().partitions.len(), 5_000);
}
