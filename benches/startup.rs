//! Start-up costs of a throwaway broker, the way tests use one:
//!
//!   cargo bench --bench startup               # in-process EmbeddedBroker, 20 starts
//!   cargo bench --bench startup -- --docker   # also the ferrite:latest image (docker/build)
//!
//! In-process: time from `EmbeddedBroker::start()` to its first answered Metadata request.
//! Docker: time from `docker run` to the first answered Metadata request on the published
//! port, and the container's idle RSS (from /proc of its process) two seconds later.
//! Each is the median of the runs. Under `cargo test` it is a short smoke (3 in-process
//! starts, no Docker).

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// One Metadata v12 round trip; true when the broker answered with itself in it.
fn metadata_ok(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = BytesMut::new();
    let version = 12;
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("startup-bench")))
        .encode(&mut buf, ApiKey::Metadata.request_header_version(version))
        .unwrap();
    MetadataRequest::default().with_topics(Some(vec![])).encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    if s.write_all(&frame).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if s.read_exact(&mut size).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    if s.read_exact(&mut body).is_err() {
        return false;
    }
    let mut body = bytes::Bytes::from(body);
    let _ = ResponseHeader::decode(&mut body, ApiKey::Metadata.response_header_version(version));
    matches!(MetadataResponse::decode(&mut body, version), Ok(r) if !r.brokers.is_empty() && body.remaining() == 0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn in_process(runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let b = ferrite::testing::EmbeddedBroker::start();
        assert!(metadata_ok(&b.bootstrap()), "in-process broker answers Metadata");
        times.push(t.elapsed());
    }
    median(times)
}

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

fn docker(runs: usize) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for i in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let name = format!("ferrite-startup-bench-{}-{i}", std::process::id());
        let t = Instant::now();
        let ok = Command::new("docker")
            .args(["run", "-d", "--rm", "--name", &name, "-p", &format!("{port}:9092")])
            .args(["-e", &format!("KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{addr}"), "ferrite:latest"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("docker is installed")
            .success();
        assert!(ok, "docker run ferrite:latest (build it with docker/build)");
        while !metadata_ok(&addr) {
            assert!(t.elapsed() < Duration::from_secs(30), "the container never answered");
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_secs(2));
        let pid = Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", &name]).output().unwrap();
        rss.push(rss_kib(String::from_utf8_lossy(&pid.stdout).trim()));
        let _ = Command::new("docker").args(["stop", &name]).stdout(std::process::Stdio::null()).status();
    }
    rss.sort();
    (median(times), rss[rss.len() / 2])
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let runs = if bench { 20 } else { 3 };
    println!("in-process EmbeddedBroker: start → first Metadata answered: median {:?} over {runs} starts", in_process(runs));
    if bench && std::env::args().any(|a| a == "--docker") {
        let size = Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", "ferrite:latest"]).output().unwrap();
        println!("image ferrite:latest: {} bytes", String::from_utf8_lossy(&size.stdout).trim());
        let (t, rss) = docker(5);
        println!("docker run → first Metadata answered: median {t:?} over 5 runs; idle RSS {rss} KiB");
    }
}
