//! Numbered writes under faults, and the checker that judges them afterwards.
//!
//! Each `Writer` is an idempotent acks=all producer on a thread of its own that writes
//! `w<writer>-<seq>` records round robin over a topic's partitions until stopped, keeping
//! every delivery report that came back positive (partition, offset, value). `read_all`
//! reads every partition from its start to its end. `check` then proves what the broker
//! promised: every acknowledged record is in the log exactly once, at the offset it was
//! acknowledged with; no record appears twice; offsets only grow; and each writer's
//! records keep their order within a partition.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

#[derive(Default)]
struct Reports {
    acked: Mutex<Vec<Acked>>,
    failed: Mutex<usize>,
}

struct Ctx(Arc<Reports>);
impl rdkafka::ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                self.0.acked.lock().unwrap().push(Acked { partition: m.partition(), offset: m.offset(), value });
            }
            Err(_) => *self.0.failed.lock().unwrap() += 1,
        }
    }
}

pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    reports: Arc<Reports>,
}

/// What a writer leaves: its acknowledged records and how many sends failed for good.
pub struct Written {
    pub acked: Vec<Acked>,
    pub failed: usize,
}

impl Writer {
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, id: usize) -> Writer {
        let reports = Arc::new(Reports::default());
        let producer: BaseProducer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "60000")
            .create_with_context(Ctx(reports.clone()))
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let (topic, flag) = (topic.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !flag.load(Ordering::SeqCst) {
                let value = format!("w{id}-{seq}");
                let partition = (seq % partitions as u64) as i32;
                match producer.send(BaseRecord::<(), str>::to(&topic).payload(&value).partition(partition)) {
                    Ok(()) => seq += 1,
                    Err(_) => {
                        producer.poll(Duration::from_millis(20));
                        continue;
                    }
                }
                producer.poll(Duration::ZERO);
                if seq.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(5)); // a steady stream, not a flood
                }
            }
            let _ = producer.flush(Duration::from_secs(70));
        });
        Writer { stop, thread, reports }
    }

    /// How many records were acknowledged so far.
    pub fn acked_so_far(&self) -> usize {
        self.reports.acked.lock().unwrap().len()
    }

    /// Stops sending and waits for every outstanding delivery report.
    pub fn stop(self) -> Written {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        let acked = std::mem::take(&mut *self.reports.acked.lock().unwrap());
        let failed = *self.reports.failed.lock().unwrap();
        Written { acked, failed }
    }
}

/// Every record of `topic`'s partitions, start to end: partition → (offset, value).
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32, within: Duration) -> BTreeMap<i32, Vec<(i64, String)>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ferrite-checker")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let ends: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, c.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)).collect();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let done = |out: &BTreeMap<i32, Vec<(i64, String)>>| ends.iter().all(|(p, end)| out[p].last().map_or(*end == 0, |(o, _)| o + 1 >= *end));
    let deadline = Instant::now() + within;
    while !done(&out) {
        assert!(Instant::now() < deadline, "could not read {topic} to its end in {within:?}");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.get_mut(&m.partition()).unwrap().push((m.offset(), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()));
        }
    }
    out
}

/// What the checker found when everything held.
#[derive(Debug)]
pub struct Verdict {
    pub acked: usize,
    pub in_log: usize,
}

/// Judges the writers' acknowledgements against the log as read.
pub fn check(written: &[Written], log: &BTreeMap<i32, Vec<(i64, String)>>) -> Result<Verdict, String> {
    let mut at: HashMap<(i32, i64), &str> = HashMap::new();
    let mut seen: HashMap<&str, (i32, i64)> = HashMap::new();
    for (p, records) in log {
        let mut last = -1;
        for (o, v) in records {
            if *o <= last {
                return Err(format!("partition {p}: offset {o} after {last}"));
            }
            last = *o;
            if let Some(first) = seen.insert(v.as_str(), (*p, *o)) {
                return Err(format!("{v} twice: at {first:?} and at ({p}, {o})"));
            }
            at.insert((*p, *o), v.as_str());
        }
        // Each writer's records keep their order in a partition.
        let mut last_seq: HashMap<&str, u64> = HashMap::new();
        for (o, v) in records {
            let Some((w, seq)) = v.split_once('-').and_then(|(w, s)| Some((w, s.parse::<u64>().ok()?))) else { continue };
            if let Some(prev) = last_seq.insert(w, seq) {
                if seq <= prev {
                    return Err(format!("partition {p}: {v} at {o} after {w}-{prev}"));
                }
            }
        }
    }
    let mut acked = 0;
    for w in written {
        for a in &w.acked {
            acked += 1;
            match at.get(&(a.partition, a.offset)) {
                Some(v) if *v == a.value => {}
                Some(v) => return Err(format!("{} acknowledged at ({}, {}), where the log holds {v}", a.value, a.partition, a.offset)),
                None => return Err(format!("{} acknowledged at ({}, {}) is not in the log", a.value, a.partition, a.offset)),
            }
        }
    }
    Ok(Verdict { acked, in_log: seen.len() })
}
