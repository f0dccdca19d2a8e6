//! Numbered writes through faults, judged by `common::checker`: idempotent acks=all
//! producers write to a topic whose partitions all three brokers lead while a broker and
//! then the active controller are killed (-9) and restarted; afterwards every acknowledged
//! record must be in the log once, at its acknowledged offset, in its writer's order.
//! (Until replication, a dead leader's partitions wait for it: the writers retry.)

mod common;

use common::checker::{check, read_all, Acked, Writer, Written};
use common::cluster::{cluster_view, eventually, quorum_view, Cluster};
use rdkafka::consumer::Consumer;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn the_checker_catches_lost_moved_duplicated_and_reordered_records() {
    let log = |entries: &[(i32, i64, &str)]| {
        let mut m: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
        for (p, o, v) in entries {
            m.entry(*p).or_default().push((*o, v.to_string()));
        }
        m
    };
    let acked = |entries: &[(i32, i64, &str)]| Written {
        acked: entries.iter().map(|(p, o, v)| Acked { partition: *p, offset: *o, value: v.to_string() }).collect(),
        failed: 0,
    };
    let good = log(&[(0, 0, "w0-0"), (0, 1, "w0-2"), (1, 0, "w0-1")]);
    assert!(check(&[acked(&[(0, 0, "w0-0"), (1, 0, "w0-1")])], &good).is_ok());
    assert!(check(&[acked(&[(0, 2, "w0-4")])], &good).unwrap_err().contains("not in the log"), "lost");
    assert!(check(&[acked(&[(0, 1, "w0-0")])], &good).unwrap_err().contains("where the log holds"), "moved");
    let twice = log(&[(0, 0, "w0-0"), (0, 1, "w0-0")]);
    assert!(check(&[], &twice).unwrap_err().contains("twice"));
    let reordered = log(&[(0, 0, "w0-2"), (0, 1, "w0-0")]);
    assert!(check(&[], &reordered).unwrap_err().contains("after w0-2"));
    let reused = log(&[(0, 3, "w0-0"), (0, 3, "w0-2")]);
    assert!(check(&[], &reused).unwrap_err().contains("offset 3 after 3"));
}

#[test]
fn acknowledged_records_survive_kills_of_a_broker_and_of_the_active_controller() {
    let mut cluster = Cluster::new("faults");
    cluster.start_all_live();
    let all = cluster.ids();
    common::create_topic(&cluster.bootstrap(1), "checked", 6, &[]);
    eventually("checked known everywhere", Duration::from_secs(10), || {
        all.iter().all(|id| {
            let c = common::consumer(&cluster.bootstrap(*id), &[]);
            c.fetch_metadata(Some("checked"), Duration::from_secs(5)).is_ok_and(|m| m.topics()[0].partitions().len() == 6)
        })
    }, |ok| *ok);
    let writers = vec![Writer::start(&cluster.bootstrap(1), "checked", 6, 0), Writer::start(&cluster.bootstrap(2), "checked", 6, 1)];
    let progress = |writers: &Vec<Writer>| writers.iter().map(Writer::acked_so_far).sum::<usize>();
    let wait_for_more = |writers: &Vec<Writer>, n: usize| {
        let from = progress(writers);
        eventually("more records acknowledged", Duration::from_secs(60), || progress(writers), |p| *p >= from + n);
    };
    wait_for_more(&writers, 300);

    // A broker that is not the controller, then the active controller: kill -9, fenced,
    // restarted, back; the writers go on through both.
    let (controller, _) = eventually("a led quorum", Duration::from_secs(10), || quorum_view(cluster.port(1)), |v| v.0 > 0);
    let broker = *all.iter().find(|id| **id != controller).unwrap();
    for victim in [broker, controller] {
        cluster.kill9(victim);
        let witness = *all.iter().find(|id| **id != victim).unwrap();
        let others: Vec<i32> = all.iter().copied().filter(|id| *id != victim).collect();
        eventually("the killed broker fenced", Duration::from_secs(20), || cluster_view(cluster.port(witness)).0, |b| *b == others);
        wait_for_more(&writers, 100); // the live partitions keep taking records
        cluster.restart(victim);
        eventually("back", Duration::from_secs(20), || cluster_view(cluster.port(witness)).0, |b| *b == all);
        wait_for_more(&writers, 300);
    }
    let written: Vec<Written> = writers.into_iter().map(Writer::stop).collect();
    assert_eq!(written.iter().map(|w| w.failed).sum::<usize>(), 0, "every send was acknowledged in the end");
    let log = read_all(&cluster.bootstrap(3), "checked", 6, Duration::from_secs(60));
    let verdict = check(&written, &log).unwrap_or_else(|e| panic!("checker: {e}"));
    assert!(verdict.acked >= 1_000, "{verdict:?}");
    assert_eq!(verdict.in_log, verdict.acked, "nothing in the log that was not acknowledged: {verdict:?}");
}
