//! The kill -9 soak: a producer keeps sending while the broker is killed with SIGKILL and
//! restarted again and again; at the end every acknowledged record must be at the offset
//! it was acknowledged with.
//!
//!   cargo build --release && cargo bench --bench crash_soak -- --cycles 100
//!
//! One broker process (`target/release/ferrite`) on one data directory, with fsync before
//! every acknowledgement (`log.flush.interval.messages=1`) and small segments
//! (`log.segment.bytes=1048576`) so that rolls, the background flush of rolled segments and
//! the recovery point are all exercised. It is killed after a random 0.3–1.5 s up, then
//! restarted at once. A librdkafka producer (acks=all, retries without end, idempotence off
//! so a retried batch may be written twice) sends numbered 200-byte records to 4 partitions
//! throughout, keeping up to 2,000 in flight. At the end everything is read back from the
//! beginning and checked:
//!
//! - lost: an acknowledged record whose offset holds nothing — must be 0;
//! - overwritten: an acknowledged offset holding another record, or acknowledged twice
//!   (an offset handed out again) — must be 0.
//!
//! It prints the restart times (spawn → port accepting connections) of the first and last
//! tenth of the cycles, which shows whether recovery work grows with the log. Under
//! `cargo test` it is a short smoke (3 cycles) that still checks every acknowledgement.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPIC: &str = "soak";
const PARTITIONS: i32 = 4;
const VALUE_LEN: usize = 200;

/// Acknowledgements as the producer's delivery reports give them: (partition, offset) → id.
#[derive(Default)]
struct Acks {
    acked: Mutex<Vec<(i32, i64, u64)>>,
    failed: AtomicU64,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let id = record_id(m.payload().unwrap_or_default()).expect("our own record");
                self.acked.lock().unwrap().push((m.partition(), m.offset(), id));
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn record_value(id: u64) -> Vec<u8> {
    let mut v = format!("soak-{id:012}-").into_bytes();
    v.resize(VALUE_LEN, b'.');
    v
}

fn record_id(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.get(5..17)?).ok()?.parse().ok()
}

/// The `ferrite` binary of this bench's profile (release under `cargo bench`).
fn ferrite_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("ferrite")
}

fn start(dir: &Path, port: u16) -> (Child, Duration) {
    let t = Instant::now();
    let child = Command::new(ferrite_binary())
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(["--override", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")])
        .args(["--override", "log.flush.interval.messages=1"])
        .args(["--override", "log.segment.bytes=1048576"])
        .args(["--override", &format!("num.partitions={PARTITIONS}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferrite starts (cargo build --release first)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "the broker did not come back within a minute");
        std::thread::sleep(Duration::from_millis(1));
    }
    (child, t.elapsed())
}

/// xorshift64: enough randomness for kill times without another dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Reads every partition from the beginning to its end: (partition, offset) → id.
fn read_back(bs: &str) -> HashMap<(i32, i64), u64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "soak-check")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = c.fetch_watermarks(TOPIC, p, Duration::from_secs(30)).expect("watermarks");
        ends.insert(p, high);
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = HashMap::new();
    let mut done: HashMap<i32, bool> = ends.iter().map(|(p, e)| (*p, *e == 0)).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.values().any(|d| !d) {
        assert!(Instant::now() < deadline, "could not read the partitions back to their ends");
        let Some(m) = c.poll(Duration::from_millis(200)) else { continue };
        let m = m.expect("consume");
        let id = record_id(m.payload().unwrap_or_default()).expect("only our records in the topic");
        got.insert((m.partition(), m.offset()), id);
        if m.offset() + 1 >= ends[&m.partition()] {
            done.insert(m.partition(), true);
        }
    }
    got
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let cycles: usize = args
        .iter()
        .position(|a| a == "--cycles")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if bench { 100 } else { 3 });
    let dir = std::env::temp_dir().join(format!("ferrite-crash-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bs = format!("127.0.0.1:{port}");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));

    let (mut broker, first_start) = start(&dir, port);
    let acks = Arc::new(Acks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer_thread = {
        let (acks, stop, sent, bs) = (acks.clone(), stop.clone(), sent.clone(), bs.clone());
        std::thread::spawn(move || {
            let p: BaseProducer<SharedAcks> = ClientConfig::new()
                .set("bootstrap.servers", &bs)
                .set("acks", "all")
                .set("enable.idempotence", "false")
                .set("linger.ms", "2")
                .set("message.timeout.ms", "300000")
                .set("retry.backoff.ms", "20")
                .set("reconnect.backoff.ms", "10")
                .set("reconnect.backoff.max.ms", "100")
                .create_with_context(Acks::default_shared(acks))
                .expect("producer");
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if p.in_flight_count() >= 2_000 {
                    p.poll(Duration::from_millis(5));
                    continue;
                }
                let value = record_value(id);
                let rec = BaseRecord::to(TOPIC).partition((id % PARTITIONS as u64) as i32).payload(&value[..]).key(&b""[..]);
                match p.send::<[u8], [u8]>(rec) {
                    Ok(()) => {
                        id += 1;
                        sent.store(id, Ordering::Relaxed);
                    }
                    Err(_) => {
                        p.poll(Duration::from_millis(5));
                    }
                }
                p.poll(Duration::ZERO);
            }
            p.flush(Duration::from_secs(300)).expect("every record settled after the last restart");
        })
    };

    let started = Instant::now();
    let mut restarts = Vec::with_capacity(cycles);
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1_200)));
        broker.kill().unwrap();
        broker.wait().unwrap();
        let (b, took) = start(&dir, port);
        broker = b;
        restarts.push(took);
        if bench && (cycle + 1) % 10 == 0 {
            println!("cycle {}: {} records acknowledged, restart {:?}", cycle + 1, acks.acked.lock().unwrap().len(), took);
        }
    }
    // Let the producer catch up on the last broker, then read everything back.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    producer_thread.join().expect("producer thread");
    let elapsed = started.elapsed();
    let served = read_back(&bs);
    broker.kill().unwrap();
    broker.wait().unwrap();

    let acked = acks.acked.lock().unwrap();
    let mut lost = 0usize;
    let mut overwritten = 0usize;
    let mut seen: HashMap<(i32, i64), u64> = HashMap::with_capacity(acked.len());
    for &(p, off, id) in acked.iter() {
        if let Some(prev) = seen.insert((p, off), id) {
            eprintln!("offset {off} of partition {p} acknowledged twice: records {prev} and {id}");
            overwritten += 1;
        }
        match served.get(&(p, off)) {
            None => {
                if lost < 10 {
                    eprintln!("lost: record {id} acknowledged at partition {p} offset {off}");
                }
                lost += 1;
            }
            Some(&other) if other != id => {
                if overwritten < 10 {
                    eprintln!("overwritten: partition {p} offset {off} acknowledged for record {id} holds record {other}");
                }
                overwritten += 1;
            }
            Some(_) => {}
        }
    }
    let size: u64 = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(TOPIC))
                .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().filter_map(|f| f.ok()?.metadata().ok()))
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let tenth = (cycles / 10).max(1);
    let mut early = restarts[..tenth.min(restarts.len())].to_vec();
    let mut late = restarts[restarts.len().saturating_sub(tenth)..].to_vec();
    let mut all = restarts.clone();
    all.sort();
    println!(
        "{cycles} kill -9 cycles in {:.0} s: {} records sent, {} acknowledged ({:.0}/s), {} delivery failures, {} records on disk ({} MB)",
        elapsed.as_secs_f64(),
        sent.load(Ordering::Relaxed),
        acked.len(),
        acked.len() as f64 / elapsed.as_secs_f64(),
        acks.failed.load(Ordering::Relaxed),
        served.len(),
        size >> 20,
    );
    println!(
        "restart (spawn → accepting): first {first_start:?}; median of first {tenth} cycles {:?}, of last {tenth} {:?}; max {:?}",
        median(&mut early),
        median(&mut late),
        all.last().copied().unwrap_or_default()
    );
    println!("lost acknowledged records: {lost}; overwritten or re-used offsets: {overwritten}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!acked.is_empty(), "nothing was acknowledged");
    assert_eq!((lost, overwritten), (0, 0), "acknowledged records were lost or their offsets re-used");
}

impl Acks {
    /// librdkafka owns its context; this one shares the report list with the bench.
    fn default_shared(shared: Arc<Acks>) -> SharedAcks {
        SharedAcks(shared)
    }
}

/// The producer's context: a handle on the bench's `Acks`.
struct SharedAcks(Arc<Acks>);

impl ClientContext for SharedAcks {}

impl ProducerContext for SharedAcks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: ()) {
        self.0.delivery(result, opaque)
    }
}
