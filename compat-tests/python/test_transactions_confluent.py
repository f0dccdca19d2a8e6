"""confluent-kafka (PyPI) transactions: committed records reach read_committed consumers,
aborted ones never (read_uncommitted sees both), with every compression codec, and
consume-transform-produce with send_offsets_to_transaction."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(broker, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    fs = admin.create_topics([NewTopic(name, partitions, 1)])
    fs[name].result(timeout=15)


def read_all(broker, topic, partitions, isolation, expect, timeout=10):
    """Everything a fresh consumer with `isolation` reads (waits a little past `expect`)."""
    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": unique("reader"),
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    deadline = time.time() + timeout
    quiet_until = None
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if len(out) >= expect:
                quiet_until = quiet_until or time.time() + 1.0
                if time.time() > quiet_until:
                    break
            continue
        assert m.error() is None, m.error()
        out.append(m.value().decode())
    c.close()
    return out


def txn_producer(broker, tid, **extra):
    p = Producer({"bootstrap.servers": broker["bootstrap"], "transactional.id": tid, "linger.ms": 2, **extra})
    p.init_transactions(15)
    return p


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "transactions")
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_committed_visible_aborted_never(broker, codec):
    topic = unique(f"py-txn-{codec}")
    create(broker, topic, partitions=2)
    p = txn_producer(broker, unique("tx"), **{"compression.type": codec})
    p.begin_transaction()
    for i in range(200):
        p.produce(topic, f"commit-a-{i}".encode(), partition=i % 2)
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(100):
        p.produce(topic, f"abort-{i}".encode(), partition=i % 2)
    p.flush(15)  # written to the log first (an abort would drop unsent records in the client)
    p.abort_transaction(15)
    p.begin_transaction()
    for i in range(50):
        p.produce(topic, f"commit-b-{i}".encode(), partition=0)
    p.commit_transaction(15)

    committed = read_all(broker, topic, [0, 1], "read_committed", 250)
    assert len(committed) == 250
    assert not [v for v in committed if v.startswith("abort")]
    everything = read_all(broker, topic, [0, 1], "read_uncommitted", 350)
    assert len(everything) == 350


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "transactions")
def test_consume_transform_produce(broker):
    src, dst, group = unique("py-ctp-in"), unique("py-ctp-out"), unique("py-ctp")
    create(broker, src)
    create(broker, dst)
    plain = Producer({"bootstrap.servers": broker["bootstrap"]})
    for i in range(200):
        plain.produce(src, f"in-{i}".encode(), partition=0)
    plain.flush(15)

    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([src])
    p = txn_producer(broker, unique("tx-ctp"))
    done, rounds = 0, 0
    deadline = time.time() + 60
    while done < 200:
        assert time.time() < deadline, f"stuck after {done}"
        msgs = c.consume(50, 1.0)
        if not msgs:
            continue
        for m in msgs:
            assert m.error() is None, m.error()
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, m.value().replace(b"in-", b"out-"), partition=0)
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 15)
        p.flush(15)
        if rounds == 1:
            p.abort_transaction(15)
            committed = c.committed([TopicPartition(src, 0)], timeout=10)[0].offset
            c.seek(TopicPartition(src, 0, committed))
        else:
            p.commit_transaction(15)
            done = msgs[-1].offset() + 1
        rounds += 1
    assert c.committed([TopicPartition(src, 0)], timeout=10)[0].offset == 200
    c.close()
    out = read_all(broker, dst, [0], "read_committed", 200)
    assert out == [f"out-{i}" for i in range(200)]
