//! Helpers shared by the integration tests: librdkafka clients (rdkafka crate, bundled
//! librdkafka) configured for a broker at `bootstrap`.
#![allow(dead_code)]

pub mod checker;
pub mod cluster;
pub mod links;
pub mod process;
pub mod raw;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// A producer's context that remembers failed deliveries, so `produce_all` can tell
/// "flushed" (every report in, successes and failures alike) from "delivered".
#[derive(Default)]
pub struct Deliveries {
    failed: std::sync::Mutex<Vec<String>>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = r {
            self.failed.lock().unwrap().push(format!("{}-{}: {e}", m.topic(), m.partition()));
        }
    }
}

impl Deliveries {
    /// The deliveries that failed so far.
    pub fn failed(&self) -> Vec<String> {
        self.failed.lock().unwrap().clone()
    }
}

pub type TestProducer = BaseProducer<Deliveries>;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> TestProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("linger.ms", "5").set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(Deliveries::default()).expect("producer")
}

pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", "ferrite-test-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

/// Produces and waits for every delivery report; panics on any delivery error.
pub fn produce_all(p: &TestProducer, records: Vec<BaseRecord<'_, [u8], [u8]>>) {
    for mut r in records {
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)), "{e}");
                    r = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("every delivery report in");
    let failed = p.context().failed();
    assert!(failed.is_empty(), "{} deliveries failed, first: {:?}", failed.len(), failed.first());
}

/// A record as read back, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

pub fn owned(m: &BorrowedMessage<'_>) -> Got {
    let headers = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec()))).collect())
        .unwrap_or_default();
    Got {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| k.to_vec()),
        value: m.payload().map(|v| v.to_vec()),
        timestamp: m.timestamp().to_millis(),
        headers,
    }
}

/// Assigns `partitions` of `topic` from `from` and reads until `count` records arrived.
pub fn consume(bootstrap: &str, topic: &str, partitions: &[i32], from: Offset, count: usize, timeout: Duration) -> Vec<Got> {
    consume_with(bootstrap, &[], topic, partitions, from, count, timeout)
}

pub fn consume_with(
    bootstrap: &str,
    extra: &[(&str, &str)],
    topic: &str,
    partitions: &[i32],
    from: Offset,
    count: usize,
    timeout: Duration,
) -> Vec<Got> {
    let c = consumer(bootstrap, extra);
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, from).unwrap();
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(owned(&m)),
            // A broker that is still starting: the client reconnects by itself.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure | rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Some(Err(e)) => panic!("consume failed: {e}"),
            None => {}
        }
    }
    out
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let mut t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let res = rt.block_on(admin.create_topics([&t], &AdminOptions::new())).expect("create_topics");
    for r in res {
        r.expect("topic created");
    }
}

/// Waits until a broker at `addr` answers an ApiVersions request: a listening socket
/// accepts connections before the broker serves them (it finishes starting first).
pub fn wait_for_broker(addr: &str, timeout: Duration) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + timeout;
    // ApiVersions v0, correlation id 1, no client id.
    let request: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    loop {
        let answered = std::net::TcpStream::connect(addr).ok().is_some_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut size = [0u8; 4];
            s.write_all(&request).is_ok() && s.read_exact(&mut size).is_ok()
        });
        if answered {
            return;
        }
        assert!(Instant::now() < deadline, "no broker answers at {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections at `addr`.
pub fn wait_for_port(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub const LIBRDKAFKA: &str = "librdkafka 2.12 (rdkafka crate)";
pub const KCAT: &str = "kcat (librdkafka 2.0.2)";
pub const RSKAFKA: &str = "rskafka 0.6";

/// Records for the compatibility matrix (`compat-tests/matrix`) that the running test
/// shows `capabilities` of `client`: a pass when the guard is dropped normally, a failure
/// when a panic drops it. Written only when `FERRITE_RESULTS` names a directory
/// (`compat-tests/run-all` sets it), one JSON line per capability in `rust.jsonl`.
pub struct Covers {
    client: &'static str,
    capabilities: &'static [&'static str],
}

pub fn covers(client: &'static str, capabilities: &'static [&'static str]) -> Covers {
    Covers { client, capabilities }
}

/// Records that `client` does not offer these capabilities (with why), for the matrix.
pub fn not_offered(client: &'static str, capabilities: &[(&str, &str)]) {
    write_results(capabilities.iter().map(|(cap, why)| line(client, cap, "not offered", why)).collect());
}

fn line(client: &str, capability: &str, result: &str, test: &str) -> String {
    let clean = |s: &str| s.replace(['"', '\\'], "");
    format!(
        "{{\"client\": \"{}\", \"capability\": \"{}\", \"result\": \"{result}\", \"test\": \"{}\"}}\n",
        clean(client),
        clean(capability),
        clean(test)
    )
}

fn write_results(lines: String) {
    use std::io::Write;
    let Some(dir) = std::env::var_os("FERRITE_RESULTS") else { return };
    let _ = std::fs::create_dir_all(&dir);
    let path = std::path::Path::new(&dir).join("rust.jsonl");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(lines.as_bytes()); // one append: lines of parallel tests do not mix
    }
}

impl Drop for Covers {
    fn drop(&mut self) {
        let result = if std::thread::panicking() { "fail" } else { "pass" };
        let current = std::thread::current();
        let test = current.name().unwrap_or("?");
        write_results(self.capabilities.iter().map(|cap| line(self.client, cap, result, test)).collect());
    }
}
