//! Transactions with librdkafka (rdkafka crate): what read_committed and read_uncommitted
//! consumers see of committed and aborted transactions, consume-transform-produce with
//! offsets committed inside the transaction, and open transactions across a broker
//! restart (completed by the producer, aborted by a new instance or by the timeout).

mod common;

use common::*;
use ferrite::testing::EmbeddedBroker;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn txn_producer(bs: &str, id: &str, extra: &[(&str, &str)]) -> common::TestProducer {
    let mut cfg = vec![("transactional.id", id), ("linger.ms", "1")];
    cfg.extend_from_slice(extra);
    let p = producer(bs, &cfg);
    p.init_transactions(T).expect("init_transactions");
    p
}

fn send(p: &common::TestProducer, topic: &str, partition: i32, values: &[String]) {
    for v in values {
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).partition(partition).payload(v.as_bytes());
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(T).expect("flushed");
}

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

fn texts(got: &[Got]) -> Vec<String> {
    got.iter().map(|g| String::from_utf8(g.value.clone().unwrap_or_default()).unwrap()).collect()
}

/// Reads everything there is (until nothing more arrives for a while).
fn drain(bs: &str, isolation: &str, topic: &str, partitions: &[i32], expect: usize) -> Vec<Got> {
    let mut got = consume_with(bs, &[("isolation.level", isolation)], topic, partitions, Offset::Beginning, expect + 1, Duration::from_secs(4));
    got.sort_by_key(|g| (g.partition, g.offset));
    got
}

#[test]
fn committed_records_are_seen_by_read_committed_and_aborted_ones_never() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "txn", 2, &[]);
    let p = txn_producer(&bs, "tx-visibility", &[]);
    p.begin_transaction().unwrap();
    send(&p, "txn", 0, &values("c1", 100));
    send(&p, "txn", 1, &values("c1", 50));
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "txn", 0, &values("aborted", 70));
    send(&p, "txn", 1, &values("aborted", 30));
    p.abort_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "txn", 1, &values("c2", 40));
    p.commit_transaction(T).unwrap();

    let committed = drain(&bs, "read_committed", "txn", &[0, 1], 190);
    let seen = texts(&committed);
    assert_eq!(seen.len(), 190, "100 + 50 + 40 committed records");
    assert!(seen.iter().all(|v| !v.starts_with("aborted")), "no aborted record reaches read_committed");
    let p1: Vec<String> = committed.iter().filter(|g| g.partition == 1).map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap()).collect();
    assert_eq!(p1, [values("c1", 50), values("c2", 40)].concat(), "in order, across the aborted transaction");
    let all = drain(&bs, "read_uncommitted", "txn", &[0, 1], 290);
    assert_eq!(all.len(), 290, "read_uncommitted sees aborted records too (control batches are skipped)");
    // Offsets: every record and every marker took one; nothing is left open.
    // Partition 0 took part in two transactions, partition 1 in three.
    for (partition, records, markers) in [(0, 170, 2), (1, 120, 3)] {
        let offsets = broker.broker().state().logs.partition("txn", partition).unwrap().offsets();
        assert_eq!(offsets.high_watermark, records + markers, "partition {partition}");
        assert_eq!(offsets.last_stable, offsets.high_watermark, "partition {partition}: no open transaction");
    }
}

#[test]
fn an_open_transaction_holds_the_stable_offset_until_it_ends() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "open", 1, &[]);
    let plain = producer(&bs, &[]);
    produce_all(&plain, values("before", 10).iter().map(|v| BaseRecord::to("open").partition(0).payload(v.as_bytes())).collect());
    let p = txn_producer(&bs, "tx-open", &[]);
    p.begin_transaction().unwrap();
    send(&p, "open", 0, &values("pending", 20));
    produce_all(&plain, values("after", 5).iter().map(|v| BaseRecord::to("open").partition(0).payload(v.as_bytes())).collect());
    let part = broker.broker().state().logs.partition("open", 0).unwrap();
    assert_eq!((part.offsets().last_stable, part.offsets().high_watermark), (10, 35));
    let early = drain(&bs, "read_committed", "open", &[0], 10);
    assert_eq!(texts(&early), values("before", 10), "read_committed stops at the first open transaction");
    p.commit_transaction(T).unwrap();
    assert_eq!(part.offsets().last_stable, 36);
    let late = drain(&bs, "read_committed", "open", &[0], 35);
    assert_eq!(texts(&late), [values("before", 10), values("pending", 20), values("after", 5)].concat());
}

#[test]
fn consume_transform_produce_commits_offsets_with_the_output() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let broker = EmbeddedBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "ctp-in", 1, &[]);
    create_topic(&bs, "ctp-out", 1, &[]);
    let plain = producer(&bs, &[]);
    produce_all(&plain, values("in", 300).iter().map(|v| BaseRecord::to("ctp-in").partition(0).payload(v.as_bytes())).collect());

    let consumer = consumer(
        &bs,
        &[("group.id", "ctp"), ("isolation.level", "read_committed"), ("auto.offset.reset", "earliest"), ("session.timeout.ms", "6000")],
    );
    consumer.subscribe(&["ctp-in"]).unwrap();
    let p = txn_producer(&bs, "tx-ctp", &[]);
    // Three rounds of 100: the second is aborted and redone.
    let mut round = 0;
    let mut next_input = 0i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next_input < 300 {
        assert!(Instant::now() < deadline, "stuck at input offset {next_input}");
        let mut batch = Vec::new();
        while batch.len() < 100 {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => batch.push(owned(&m)),
                Some(Err(e)) => panic!("consume failed: {e}"),
                None => assert!(Instant::now() < deadline, "input stopped after {} records", batch.len()),
            }
        }
        assert_eq!(batch[0].offset, next_input, "round {round} starts where the last commit left off");
        p.begin_transaction().unwrap();
        let out: Vec<String> = texts(&batch).iter().map(|v| v.replace("in-", "out-")).collect();
        send(&p, "ctp-out", 0, &out);
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("ctp-in", 0, Offset::Offset(batch.last().unwrap().offset + 1)).unwrap();
        p.send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap(), T).unwrap();
        if round == 1 {
            p.abort_transaction(T).unwrap();
            // Back to the last committed offset, as an application does after an abort.
            let committed = consumer.committed(T).unwrap();
            let at = committed.find_partition("ctp-in", 0).unwrap().offset();
            assert_eq!(at, Offset::Offset(100), "the aborted transaction's offsets did not take effect");
            consumer.seek("ctp-in", 0, at, T).unwrap();
        } else {
            p.commit_transaction(T).unwrap();
            next_input = batch.last().unwrap().offset + 1;
        }
        round += 1;
    }
    let committed = consumer.committed(T).unwrap();
    assert_eq!(committed.find_partition("ctp-in", 0).unwrap().offset(), Offset::Offset(300));
    let output = drain(&bs, "read_committed", "ctp-out", &[0], 300);
    let want: Vec<String> = values("out", 300);
    assert_eq!(texts(&output), want, "every input transformed exactly once in the committed output");
    let everything = drain(&bs, "read_uncommitted", "ctp-out", &[0], 400);
    assert_eq!(everything.len(), 400, "the aborted round's output is in the log, hidden from read_committed");
    consumer.commit_consumer_state(CommitMode::Sync).ok();
}

#[test]
fn an_open_transaction_survives_a_restart_and_its_producer_commits_it() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let mut broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "restart-commit", 1, &[]);
    let p = txn_producer(&bs, "tx-restart-commit", &[]);
    p.begin_transaction().unwrap();
    send(&p, "restart-commit", 0, &values("kept", 25));
    broker.crash_and_restart().unwrap();
    let part = broker.broker().state().logs.partition("restart-commit", 0).unwrap();
    assert_eq!((part.offsets().last_stable, part.offsets().high_watermark), (0, 25), "still open after the restart");
    let d = broker.broker().state().txns.describe("tx-restart-commit").unwrap();
    assert_eq!(d.state.name(), "Ongoing");
    p.commit_transaction(T).expect("the producer finishes its transaction after the restart");
    let got = drain(&broker.bootstrap(), "read_committed", "restart-commit", &[0], 25);
    assert_eq!(texts(&got), values("kept", 25));
}

#[test]
fn a_new_instance_aborts_the_open_transaction_left_by_a_crash() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let mut broker = EmbeddedBroker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "restart-fence", 1, &[]);
    let old = txn_producer(&bs, "tx-fence", &[]);
    old.begin_transaction().unwrap();
    send(&old, "restart-fence", 0, &values("zombie", 15));
    broker.crash_and_restart().unwrap();
    let part = broker.broker().state().logs.partition("restart-fence", 0).unwrap();
    assert_eq!(part.offsets().last_stable, 0);
    let new = txn_producer(&bs, "tx-fence", &[]);
    assert_eq!(part.offsets().last_stable, part.offsets().high_watermark, "the fence aborted the old transaction");
    new.begin_transaction().unwrap();
    send(&new, "restart-fence", 0, &values("fresh", 5));
    new.commit_transaction(T).unwrap();
    let err = old.commit_transaction(Duration::from_secs(10)).expect_err("the old instance is fenced");
    assert!(err.to_string().to_lowercase().contains("fenced"), "{err}");
    let got = drain(&bs, "read_committed", "restart-fence", &[0], 5);
    assert_eq!(texts(&got), values("fresh", 5));
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_after_a_restart() {
    let _covers = covers(LIBRDKAFKA, &["transactions"]);
    let mut broker = EmbeddedBroker::start_with(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "restart-timeout", 1, &[]);
    let p = txn_producer(&bs, "tx-timeout", &[("transaction.timeout.ms", "2000"), ("message.timeout.ms", "2000")]);
    p.begin_transaction().unwrap();
    send(&p, "restart-timeout", 0, &values("late", 10));
    // The producer goes quiet (kept alive so that closing it does not abort anything).
    broker.restart().unwrap();
    let part = broker.broker().state().logs.partition("restart-timeout", 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while part.offsets().last_stable < part.offsets().high_watermark {
        assert!(Instant::now() < deadline, "the timed-out transaction was never aborted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(part.offsets().high_watermark, 11, "ten records and the abort marker");
    assert!(drain(&bs, "read_committed", "restart-timeout", &[0], 0).is_empty());
    let d = broker.broker().state().txns.describe("tx-timeout").unwrap();
    assert_eq!((d.state.name(), d.producer_epoch), ("CompleteAbort", 1), "aborted under a bumped epoch");
    let ids: BTreeSet<String> = broker.broker().state().txns.list().into_iter().map(|d| d.transactional_id).collect();
    assert!(ids.contains("tx-timeout"));
    drop(p);
}
