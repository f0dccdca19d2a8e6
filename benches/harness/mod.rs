//! What the benchmarks share: librdkafka clients tuned for throughput, and end-to-end
//! latency at a fixed offered rate.
#![allow(dead_code)]

pub mod burst;
pub mod perf_tool;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Extra client settings from the command line (`--producer-set k=v`, `--consumer-set
/// k=v`), applied last, the same for every broker under test.
pub static PRODUCER_SET: OnceLock<Vec<(String, String)>> = OnceLock::new();
pub static CONSUMER_SET: OnceLock<Vec<(String, String)>> = OnceLock::new();
/// Where latency runs leave their samples (`--latency-dir DIR`), to look at a tail in time.
pub static LATENCY_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fn with_extra(mut cfg: ClientConfig, extra: &OnceLock<Vec<(String, String)>>) -> ClientConfig {
    for (k, v) in extra.get().map(Vec::as_slice).unwrap_or(&[]) {
        cfg.set(k, v);
    }
    cfg
}

/// Parses `key=value` for `--producer-set` / `--consumer-set`.
pub fn parse_setting(kv: &str) -> (String, String) {
    let (k, v) = kv.split_once('=').expect("a client setting is key=value");
    (k.to_string(), v.to_string())
}

/// Sends one record, waiting out a full local queue (QueueFull) by polling.
pub fn send(p: &BaseProducer, mut rec: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, back)) => {
                rec = back;
                p.poll(Duration::from_millis(1));
            }
        }
    }
}

pub fn producer(bs: &str, acks: &str, linger: &str) -> BaseProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bs)
        .set("acks", acks)
        .set("linger.ms", linger)
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2000000")
        .set("enable.idempotence", "false");
    with_extra(cfg, &PRODUCER_SET).create().expect("producer")
}

/// A consumer tuned for throughput (the harness's settings, then `--consumer-set`).
pub fn consumer_config(bs: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bs)
        .set("group.id", "ferrite-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.max.messages.kbytes", "1048576")
        // One 10 MB fetch of 100-byte records is 100,000 messages; at librdkafka's default
        // queued.min.messages (100,000) the fetcher would back off fetch.queue.backoff.ms.
        .set("queued.min.messages", "10000000");
    cfg
}

pub fn consumer(bs: &str, topic: &str, from: Offset) -> BaseConsumer {
    let mut cfg = consumer_config(bs);
    cfg.set("fetch.wait.max.ms", "5");
    let c: BaseConsumer = with_extra(cfg, &CONSUMER_SET).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, from).unwrap();
    c.assign(&tpl).unwrap();
    c
}

/// Polls `c` until it has delivered `n` records; returns how long that took. A stall
/// past `limit` fails the bench.
pub fn drain(c: &BaseConsumer, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            m.expect("consume");
            got += 1;
        }
        assert!(start.elapsed() < limit, "consume stalled at {got} of {n}");
    }
    start.elapsed()
}

/// A throughput consumer (`consumer_config` with `--consumer-set` applied).
pub fn throughput_consumer(bs: &str) -> BaseConsumer {
    with_extra(consumer_config(bs), &CONSUMER_SET).create().expect("consumer")
}

/// What one end-to-end latency run measured.
pub struct LatencyRun {
    /// Sorted, one per record received.
    pub samples: Vec<Duration>,
    pub sent: u64,
    pub received_per_s: f64,
    /// From the first record sent to the last received (or the consumer giving up).
    pub elapsed: Duration,
    /// The share of all cores busy meanwhile (clients, broker, everything else).
    pub machine_busy: f64,
}

/// A 100-byte payload carrying its send time as `LATENCY:<µs since the epoch>`, the
/// format librdkafka's performance tool reads in its latency mode (`-l`).
fn stamp(payload: &mut [u8; 100]) {
    use std::io::Write;
    let us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    payload.fill(b' ');
    let _ = write!(&mut payload[..], "LATENCY:{us}");
}

/// The send time a `stamp`ed payload carries, as µs since the epoch.
fn stamped_us(payload: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(payload.strip_prefix(b"LATENCY:")?).ok()?;
    text.split(' ').next()?.parse().ok()
}

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
}

/// How often the paced producer of a latency run hands its due records to librdkafka: a
/// burst a millisecond, the batching linger.ms=1 would give.
const TICK: Duration = Duration::from_millis(1);
/// The most records handed over in one call (librdkafka's default `batch.num.messages`).
const MAX_BURST: u64 = 10_000;

/// Sends `total` 100-byte records — `rate` records/s, or as fast as the producer goes
/// with `None` — each stamped with its send time (paced runs hand them over once per
/// `TICK`, those of one tick in one call), and measures when a consumer sees them:
/// librdkafka's performance tool (`-l -A`) when `tool` is given, else a poll loop through
/// the crate.
pub fn latency_run(bs: &str, topic: &str, rate: Option<u64>, total: u64, tool: Option<&std::path::Path>) -> LatencyRun {
    // One warm-up record creates the topic, so the consumer can start right after it.
    let p = producer(bs, "1", "0");
    p.send(BaseRecord::<[u8], [u8]>::to(topic).partition(0).payload(&[0u8; 8][..])).map_err(|(e, _)| e).unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
    let consumer = LatencyConsumer::start(bs, topic, total as usize, tool);
    std::thread::sleep(Duration::from_secs(2)); // consumer connected, its fetch parked
    let burst = burst::BurstProducer::new(&p, topic, 0);
    let mut payload = [b' '; 100];
    let (start, busy0, started_us) = (Instant::now(), machine_busy_seconds(), now_us());
    let mut sent: u64 = 0;
    while sent < total {
        // Hand librdkafka every record due by now in one call (see `burst`), each stamped
        // with this moment, serve delivery reports, then sleep until the next tick: no
        // spinning, so the producer does not take a core from the broker and the consumer.
        let due_now = match rate {
            Some(r) => (start.elapsed().as_nanos() as u64 * r / 1_000_000_000).min(total),
            None => (sent + 1_000).min(total),
        };
        // A producer that fell behind (a rate above what it sustains) catches up in
        // librdkafka-sized batches, not in one ever larger call.
        let due = due_now.min(sent + MAX_BURST);
        if due > sent {
            stamp(&mut payload);
            burst.send(&payload, (due - sent) as usize);
            sent = due;
        }
        p.poll(Duration::ZERO);
        if rate.is_some() && sent == due_now {
            let next = start + TICK * (start.elapsed().as_nanos() / TICK.as_nanos() + 1) as u32;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    drop(burst);
    p.flush(Duration::from_secs(60)).unwrap();
    let mut samples = consumer.finish(Duration::from_secs(30));
    let received = start.elapsed();
    let busy = machine_busy_seconds() - busy0;
    if let Some(dir) = LATENCY_DIR.get() {
        keep_samples(&dir.join(format!("{topic}.txt")), started_us, rate, &samples);
    }
    samples.sort();
    let machine_busy = busy / received.as_secs_f64() / cores();
    LatencyRun { sent, received_per_s: samples.len() as f64 / received.as_secs_f64(), samples, elapsed: received, machine_busy }
}

/// Waits until the machine is quiet — under 10% of its cores busy over 200 ms — or
/// `limit` has passed; returns whether it got quiet. A broker killed at the end of a
/// round (Tansu's 14 GB heap) or the freed memory of `touch_free_memory` keeps the kernel
/// busy returning pages for a while, which the next broker's start and first scenario
/// would otherwise pay for.
pub fn settle(limit: Duration) -> bool {
    let window = Duration::from_millis(200);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let before = machine_busy_seconds();
        std::thread::sleep(window);
        if (machine_busy_seconds() - before) / window.as_secs_f64() / cores() < 0.10 {
            return true;
        }
    }
    false
}

/// The machine's cores: busy seconds over wall seconds divided by this is how busy it was.
fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// The kernel's clock tick for /proc CPU times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf").arg("CLK_TCK").output().ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
    })
}

/// CPU seconds all cores have spent busy since boot (`/proc/stat`: all but idle and iowait).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let (idle, iowait) = (ticks.get(3).copied().unwrap_or(0.0), ticks.get(4).copied().unwrap_or(0.0));
    // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
    let total: f64 = ticks.iter().take(8).sum();
    (total - idle - iowait) / clock_ticks_per_second()
}

/// Writes one latency in µs per line, in the order the records arrived: at a fixed rate
/// the line number tells when a record was sent, so a stall shows where it happened. A
/// first `#` line gives when the first record was sent (µs since the epoch), to line the
/// samples up with other logs (the broker's request log, `/proc/stat`), and the offered
/// rate, which turns a line number into a send time (`benches/latency_episodes.py`).
fn keep_samples(path: &std::path::Path, started_us: u64, rate: Option<u64>, samples: &[Duration]) {
    let offered = rate.map_or_else(|| "unthrottled".to_string(), |r| format!("{r} records/s"));
    let head = format!("# first record sent at {started_us} µs since the epoch; offered {offered}\n");
    let text: String = std::iter::once(head).chain(samples.iter().map(|d| format!("{}\n", d.as_micros()))).collect();
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("could not keep latency samples in {}: {e}", path.display());
    }
}

/// The consuming side of a latency run: reads `total` records after the warm-up one.
enum LatencyConsumer {
    Tool { child: std::process::Child, file: tempfile::NamedTempFile },
    /// The thread, and the time it gives up at (set once the producer is done).
    Crate(std::thread::JoinHandle<Vec<Duration>>, std::sync::Arc<std::sync::Mutex<Option<Instant>>>),
}

impl LatencyConsumer {
    fn start(bs: &str, topic: &str, total: usize, tool: Option<&std::path::Path>) -> Self {
        if let Some(tool) = tool {
            let file = tempfile::NamedTempFile::new().unwrap();
            let extra = CONSUMER_SET.get().map(Vec::as_slice).unwrap_or(&[]);
            let child = perf_tool::latency_consumer(tool, bs, topic, total, file.path(), extra);
            return LatencyConsumer::Tool { child, file };
        }
        let (bs, topic) = (bs.to_string(), topic.to_string());
        let give_up = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
        let until = give_up.clone();
        LatencyConsumer::Crate(std::thread::spawn(move || {
            let c = consumer(&bs, &topic, Offset::Offset(1));
            let mut lat = Vec::with_capacity(total);
            let over = || until.lock().unwrap().is_some_and(|t| Instant::now() > t);
            while lat.len() < total && !over() {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    let sent = m.payload().and_then(stamped_us).expect("a stamped record");
                    lat.push(Duration::from_micros(now_us().saturating_sub(sent)));
                }
            }
            lat
        }), give_up)
    }

    /// Waits for the consumer to have read every record; returns the latencies.
    fn finish(self, limit: Duration) -> Vec<Duration> {
        match self {
            LatencyConsumer::Crate(thread, give_up) => {
                *give_up.lock().unwrap() = Some(Instant::now() + limit);
                thread.join().unwrap()
            }
            LatencyConsumer::Tool { child, file } => {
                if !perf_tool::wait_or_interrupt(child, limit) {
                    eprintln!("latency consumer: not every record arrived within {limit:?}");
                }
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                text.lines().filter_map(|l| l.trim().parse::<u64>().ok()).map(Duration::from_micros).collect()
            }
        }
    }
}

/// `latency_run` at a fixed rate through the crate's clients (the samples only).
pub fn latency(bs: &str, topic: &str, rate: u64, secs: u64) -> Vec<Duration> {
    latency_run(bs, topic, Some(rate), rate * secs, None).samples
}

pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}
