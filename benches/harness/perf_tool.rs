//! librdkafka's own performance tool (`examples/rdkafka_performance.c`), built from the
//! librdkafka source the rdkafka crate vendors and linked against the very `librdkafka.a`
//! the crate built, so it is the same librdkafka (2.12) as every other bench client.
//!
//! Why: a poll loop through the crate pays a lock, a clock read and an allocation per
//! message, which caps it near 1.7 M records/s on this machine whatever the broker does;
//! the tool produces without copying and consumes through a callback, so the broker's
//! own cost shows. Issue 8's reference figures (Kafka, Tansu) were measured with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The target directory of the running bench profile (`target/release`, `target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<bench>-<hash>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The newest file matching `build/<crate>-*/<rel>` under the profile directory.
fn newest_build_output(profile: &Path, krate: &str, rel: &str) -> Option<PathBuf> {
    let build = profile.join("build");
    std::fs::read_dir(&build)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{krate}-")))
        .map(|e| e.path().join(rel))
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

/// Builds `rdkafka_performance` once per librdkafka build; returns its path.
pub fn perf_tool() -> PathBuf {
    let profile = profile_dir();
    let out = profile.join("rdkafka_performance");
    let lib = newest_build_output(&profile, "rdkafka-sys", "out/lib/librdkafka.a").expect("the rdkafka crate's librdkafka.a (build the benches first)");
    let fresh = |p: &Path| {
        let t = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
        t(p).is_some() && t(p) >= t(&lib)
    };
    if fresh(&out) {
        return out;
    }
    let build_dir = lib.parent().and_then(Path::parent).unwrap().join("build");
    let cache = std::fs::read_to_string(build_dir.join("CMakeCache.txt")).expect("librdkafka's CMakeCache.txt");
    let source = cache
        .lines()
        .find_map(|l| l.strip_prefix("RdKafka_SOURCE_DIR:STATIC="))
        .map(PathBuf::from)
        .expect("RdKafka_SOURCE_DIR in CMakeCache.txt");
    // The example includes "../src/rd.h", whose headers include "../config.h": lay out a
    // tree with the sources' headers and the generated config.h side by side.
    let tree = profile.join("rdkafka-performance-src");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("examples")).unwrap();
    copy_dir(&source.join("src"), &tree.join("src"));
    std::fs::copy(source.join("examples/rdkafka_performance.c"), tree.join("examples/rdkafka_performance.c")).unwrap();
    std::fs::copy(build_dir.join("generated/config.h"), tree.join("config.h")).expect("librdkafka's generated config.h");
    let zstd = newest_build_output(&profile, "zstd-sys", "out/libzstd.a").expect("zstd-sys's libzstd.a");
    let ok = Command::new("gcc")
        .current_dir(&tree)
        .args(["-O2", "-Isrc", "examples/rdkafka_performance.c", "-o"])
        .arg(&out)
        .arg(&lib)
        .arg(&zstd)
        .args(["-lz", "-lpthread", "-lm", "-ldl"])
        .status()
        .expect("gcc runs");
    assert!(ok.success(), "building rdkafka_performance failed");
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Where producers send records.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// The application names the partition (`-p 0`, one partition only: the tool's
    /// usual way).
    Explicit,
    /// Keyless records left to librdkafka's partitioner: sticky, one partition per
    /// `linger.ms` x 2 and then another, as Kafka's own clients do since KIP-480.
    Partitioner,
    /// Every record to a random partition (`sticky.partitioning.linger.ms=0`): a request
    /// carries a small batch for every partition.
    Spread,
}

/// One run of the tool against a topic.
pub struct Run<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    /// Partitions of the topic; a consumer reads all of them.
    pub partitions: i32,
    /// Where a producer sends each record.
    pub placement: Placement,
    pub size: usize,
    pub acks: &'a str,
    pub records: usize,
}

/// The client settings the compare bench uses with either client: 1 MB batches, 5 ms
/// linger (librdkafka's default), deep queues; the consumer's as `consumer_config`'s.
const PRODUCER_SETTINGS: [&str; 6] =
    // log_level 3: not the tool's own consumer settings, which a producer warns it ignores.
    ["log_level=3", "linger.ms=5", "batch.size=1000000", "queue.buffering.max.messages=2000000", "queue.buffering.max.kbytes=2000000", "enable.idempotence=false"];
const CONSUMER_SETTINGS: [&str; 5] =
    // log_level 3: not the tool's own producer settings, which a consumer warns it ignores.
    ["log_level=3", "fetch.max.bytes=52428800", "max.partition.fetch.bytes=10485760", "queued.max.messages.kbytes=1048576", "queued.min.messages=10000000"];

fn base(tool: &Path, mode: &str, run: &Run, settings: &[&str], extra: &[(String, String)]) -> Command {
    let mut c = Command::new(tool);
    // -v: a producer prints why a delivery failed (kept for `wait_all` to show).
    c.args([mode, "-v", "-t", run.topic, "-b", run.bootstrap]);
    for s in settings {
        c.args(["-X", s]);
    }
    for (k, v) in extra {
        c.args(["-X", &format!("{k}={v}")]);
    }
    c.stderr(Stdio::inherit());
    c
}

/// A running tool, its standard output kept so that a failure can say why.
pub struct Running {
    child: Child,
    out: tempfile::NamedTempFile,
}

fn spawn_kept(mut c: Command) -> Running {
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let child = c.stdout(out.reopen().expect("the temporary file")).spawn().expect("rdkafka_performance starts");
    Running { child, out }
}

/// The lines of a failed run's output that say what went wrong (at most five), and its
/// last line (the tool's summary).
fn failure_lines(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().filter(|l| l.contains("fail") || l.contains("rror")).take(5).map(str::to_string).collect();
    if let Some(last) = text.lines().last().filter(|l| !lines.iter().any(|k| k == l)) {
        lines.push(last.to_string());
    }
    lines
}

/// Starts a producer of `run.records` records.
pub fn produce(tool: &Path, run: &Run, extra: &[(String, String)]) -> Running {
    let acks = if run.acks == "all" { "-1" } else { run.acks };
    let mut c = base(tool, "-P", run, &PRODUCER_SETTINGS, extra);
    c.args(["-s", &run.size.to_string(), "-c", &run.records.to_string(), "-a", acks]);
    match run.placement {
        Placement::Explicit => {
            assert_eq!(run.partitions, 1, "the tool's producer names one partition only");
            c.args(["-p", "0"]);
        }
        Placement::Spread => {
            c.args(["-X", "sticky.partitioning.linger.ms=0"]);
        }
        Placement::Partitioner => {}
    }
    spawn_kept(c)
}

/// Starts a consumer of `run.records` records from the start of every partition.
pub fn consume(tool: &Path, run: &Run, extra: &[(String, String)]) -> Running {
    let mut c = base(tool, "-C", run, &CONSUMER_SETTINGS, extra);
    c.args(["-o", "beginning", "-c", &run.records.to_string()]);
    for p in 0..run.partitions {
        c.args(["-p", &p.to_string()]);
    }
    spawn_kept(c)
}

/// Waits for every child; false when one failed (for a producer: some record was not
/// acknowledged). A child that outlives `limit` fails the bench.
#[must_use]
pub fn wait_all(children: Vec<Running>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut ok = true;
    for Running { mut child, out } in children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                if !status.success() {
                    eprintln!("rdkafka_performance failed ({status}):");
                    for line in failure_lines(out.path()) {
                        eprintln!("  {line}");
                    }
                    ok = false;
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rdkafka_performance did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    ok
}

/// Starts a latency-mode consumer (`-l`) of `total` records after the first one of
/// partition 0, writing each record's latency in µs to `file` (`-A`).
pub fn latency_consumer(tool: &Path, bs: &str, topic: &str, total: usize, file: &Path, extra: &[(String, String)]) -> Child {
    let run = Run { bootstrap: bs, topic, partitions: 1, placement: Placement::Explicit, size: 0, acks: "1", records: total };
    let mut c = base(tool, "-C", &run, &CONSUMER_SETTINGS, extra);
    c.args(["-p", "0", "-o", "1", "-c", &total.to_string(), "-l", "-A"]).arg(file);
    // Brokers that answer a parked fetch only at its deadline are not held to 500 ms.
    c.args(["-X", "fetch.wait.max.ms=5"]);
    c.stdout(Stdio::null()).spawn().expect("rdkafka_performance starts")
}

/// Waits for `child` up to `limit`, then interrupts it (SIGINT: the tool stops cleanly,
/// closing its latency file). Returns whether it finished by itself.
pub fn wait_or_interrupt(mut child: Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "rdkafka_performance failed ({status}); its errors are above");
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
