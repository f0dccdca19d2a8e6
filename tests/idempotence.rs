//! The idempotent producer (librdkafka, `enable.idempotence=true`) through a proxy that
//! loses responses: it forwards every request, but for some produce requests it swallows
//! the broker's answer and cuts the connection, so the client retries batches the broker
//! already wrote. The log must hold every record exactly once, in order.

mod common;

use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads one size-prefixed Kafka frame (with its size).
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut frame = size.to_vec();
    frame.resize(4 + i32::from_be_bytes(size) as usize, 0);
    s.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

struct Proxy {
    port: u16,
    cuts: Arc<AtomicUsize>,
}

/// Forwards connections accepted on `listener` to `upstream`; every `every`-th produce
/// request loses its answer and its connection (until `max_cuts` cuts were made).
fn proxy(listener: TcpListener, upstream: std::net::SocketAddr, every: usize, max_cuts: usize) -> Proxy {
    let port = listener.local_addr().unwrap().port();
    let produces = Arc::new(AtomicUsize::new(0));
    let cuts = Arc::new(AtomicUsize::new(0));
    let cuts2 = cuts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(upstream) else { return };
            let doomed: Arc<Mutex<HashSet<i32>>> = Arc::default();
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (produces, cuts, doomed2) = (produces.clone(), cuts2.clone(), doomed.clone());
            std::thread::spawn(move || {
                while let Some(frame) = read_frame(&mut client) {
                    let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                    let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                    if api_key == 0 && (produces.fetch_add(1, Ordering::SeqCst) + 1) % every == 0 && cuts.load(Ordering::SeqCst) < max_cuts {
                        doomed2.lock().unwrap().insert(correlation);
                    }
                    if server.write_all(&frame).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(Shutdown::Both);
            });
            let cuts = cuts2.clone();
            std::thread::spawn(move || {
                while let Some(frame) = read_frame(&mut s2) {
                    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    if doomed.lock().unwrap().remove(&correlation) {
                        // The broker has written the batch; the client never hears of it.
                        cuts.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if c2.write_all(&frame).is_err() {
                        break;
                    }
                }
                let _ = c2.shutdown(Shutdown::Both);
                let _ = s2.shutdown(Shutdown::Both);
            });
        }
    });
    Proxy { port, cuts }
}

#[test]
fn retried_batches_after_lost_answers_are_written_once_and_in_order() {
    let _covers = covers(LIBRDKAFKA, &["idempotence"]);
    // The proxy listens first: the broker advertises its port, so every client connection
    // (metadata and produce) goes through it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let advertised = format!("PLAINTEXT://{}", listener.local_addr().unwrap());
    let broker = EmbeddedBroker::start_with(&[("advertised.listeners", &advertised)]);
    let upstream = broker.broker().local_addrs()[0];
    let p = proxy(listener, upstream, 5, 8);
    let bootstrap = format!("127.0.0.1:{}", p.port);
    create_topic(&format!("{upstream}"), "idem", 3, &[]);
    let producer = producer(
        &bootstrap,
        &[("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "2"), ("batch.num.messages", "50"), ("retry.backoff.ms", "10"),
          ("reconnect.backoff.ms", "10"), ("reconnect.backoff.max.ms", "100")],
    );
    let values: Vec<String> = (0..3000).map(|i| format!("{:05}", i)).collect();
    produce_all(&producer, values.iter().enumerate().map(|(i, v)| BaseRecord::to("idem").partition((i % 3) as i32).payload(v.as_bytes())).collect());
    assert!(p.cuts.load(Ordering::SeqCst) >= 3, "the proxy cut connections after written requests ({} cuts)", p.cuts.load(Ordering::SeqCst));
    let got = consume(&format!("{upstream}"), "idem", &[0, 1, 2], Offset::Beginning, 3000, Duration::from_secs(30));
    assert_eq!(got.len(), 3000, "every record once (no duplicates: the log holds exactly 3000)");
    for part in 0..3 {
        let seq: Vec<String> = got.iter().filter(|g| g.partition == part).map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap()).collect();
        let want: Vec<String> = values.iter().enumerate().filter(|(i, _)| (*i % 3) as i32 == part).map(|(_, v)| v.clone()).collect();
        assert_eq!(seq, want, "partition {part}: no gaps, no duplicates, in order");
    }
    let end = broker.broker().state().logs.partition("idem", 0).unwrap().offsets().high_watermark;
    assert_eq!(end, 1000, "no second copy in the log");
    assert!(broker.broker().metrics().duplicate_batches() >= 1, "retried batches reached the broker and were recognised");
    // DescribeProducers shows the one producer, its epoch and its last sequence.
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{ApiKey, DescribeProducersRequest, DescribeProducersResponse, TopicName};
    let mut s = TcpStream::connect(upstream).unwrap();
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_static_str("idem")))
        .with_partition_indexes(vec![0])]);
    let resp: DescribeProducersResponse = common::raw::call(&mut s, ApiKey::DescribeProducers, 0, &req);
    let part = &resp.topics[0].partitions[0];
    assert_eq!(part.error_code, 0);
    let [producer] = &part.active_producers[..] else { panic!("one producer: {part:?}") };
    assert_eq!((producer.producer_epoch, producer.last_sequence, producer.current_txn_start_offset), (0, 999, -1));
}
