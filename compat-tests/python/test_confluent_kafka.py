"""confluent-kafka (PyPI, bundles the newest librdkafka): produce/consume round trips with
keys, headers and every codec, and the AdminClient calls admin tools make."""

import re
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,
                                   NewTopic, ResourceType)


NOT_OFFERED = {
    "confluent-kafka 2.16 (Python)": {
        "admin.log_dirs": "confluent-kafka 2.16's AdminClient has no DescribeLogDirs",
        "admin.transactions": "confluent-kafka 2.16's AdminClient has no DescribeTransactions/ListTransactions",
    }
}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(broker):
    return AdminClient({"bootstrap.servers": broker["bootstrap"]})


def create(broker, name, partitions=1, config=None):
    a = admin(broker)
    fs = a.create_topics([NewTopic(name, partitions, 1, config=config or {})])
    fs[name].result(timeout=15)


def consume(broker, topic, partitions, count, timeout=30):
    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    import time
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append(m)
    c.close()
    return out


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "round_trip", "codecs", "idempotence")
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_with_keys_headers_and_codec(broker, codec):
    topic = unique(f"py-{codec}")
    create(broker, topic, partitions=2)
    p = Producer({"bootstrap.servers": broker["bootstrap"], "compression.type": codec, "linger.ms": 5,
                  "enable.idempotence": True})
    n = 1000
    for i in range(n):
        p.produce(topic, key=f"k{i}", value=f"v{i}" * (i % 50 + 1), partition=i % 2,
                  headers=[("idx", str(i).encode())], timestamp=1_600_000_000_000 + i)
    assert p.flush(30) == 0
    got = consume(broker, topic, [0, 1], n)
    assert len(got) == n
    seen = set()
    for m in got:
        i = int(m.key().decode()[1:])
        assert m.value() == (f"v{i}" * (i % 50 + 1)).encode()
        assert m.headers() == [("idx", str(i).encode())]
        assert m.timestamp()[1] == 1_600_000_000_000 + i
        assert m.partition() == i % 2 and m.offset() == i // 2
        seen.add(i)
    assert len(seen) == n


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "partitions")
def test_many_partitions_keep_key_order(broker):
    topic = unique("py-many")
    create(broker, topic, partitions=64)
    p = Producer({"bootstrap.servers": broker["bootstrap"], "linger.ms": 5})
    for i in range(6400):
        p.produce(topic, key=b"k%d" % (i % 640), value=b"%d" % i)
    assert p.flush(30) == 0
    got = consume(broker, topic, list(range(64)), 6400)
    assert len(got) == 6400
    by_key = {}
    for m in got:
        by_key.setdefault(m.key(), []).append((m.partition(), int(m.value())))
    for key, seen in by_key.items():
        assert len({part for part, _ in seen}) == 1, f"{key} stays in one partition"
        values = [v for _, v in seen]
        assert values == sorted(values), f"{key} in order"
    assert len({m.partition() for m in got}) > 32, "keys spread over the partitions"


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.topics", "admin.configs")
def test_admin_create_describe_delete(broker):
    a = admin(broker)
    topic = unique("py-admin")
    a.create_topics([NewTopic(topic, 3, 1, config={"retention.ms": "123456", "cleanup.policy": "delete"})])[topic].result(15)
    md = a.list_topics(timeout=10)
    assert len(md.topics[topic].partitions) == 3
    # Already exists / invalid replication factor / invalid config are Kafka errors.
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    assert e.value.args[0].name() == "TOPIC_ALREADY_EXISTS"
    bad = unique("py-rf")
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(bad, 1, 3)])[bad].result(15)
    assert e.value.args[0].name() == "INVALID_REPLICATION_FACTOR"
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(bad, 1, 1, config={"no.such.key": "1"})])[bad].result(15)
    assert e.value.args[0].name() == "INVALID_CONFIG"

    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = a.describe_configs([res])[res].result(15)
    assert configs["retention.ms"].value == "123456"
    assert not configs["retention.ms"].is_default
    assert configs["segment.bytes"].value == "1073741824" and configs["segment.bytes"].is_default
    assert configs["cleanup.policy"].value == "delete"

    broker_res = ConfigResource(ResourceType.BROKER, "0")
    bconf = a.describe_configs([broker_res])[broker_res].result(15)
    assert bconf["log.segment.bytes"].value == "1073741824"
    assert bconf["num.partitions"].value == "1"

    a.create_partitions([NewPartitions(topic, 5)])[topic].result(15)
    assert len(a.list_topics(timeout=10).topics[topic].partitions) == 5

    a.delete_topics([topic])[topic].result(15)
    assert topic not in a.list_topics(timeout=10).topics
    # Its partition directories are gone (renamed *-delete, then removed in the background).
    assert not [p for p in broker["data"].iterdir() if re.fullmatch(rf"{topic}-\d+", p.name)]


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.cluster")
def test_describe_cluster(broker):
    a = admin(broker)
    cluster = a.describe_cluster().result(15)
    assert cluster.cluster_id
    assert [n.id for n in cluster.nodes] == [0]
    assert cluster.controller.id == 0
    host, port = broker["bootstrap"].split(":")
    assert (cluster.nodes[0].host, cluster.nodes[0].port) == (host, int(port))


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "by_time")
def test_offsets_for_times_and_watermarks(broker):
    topic = unique("py-times")
    create(broker, topic)
    p = Producer({"bootstrap.servers": broker["bootstrap"]})
    for i in range(100):
        p.produce(topic, value=b"x", timestamp=5_000 + i * 100)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": "unused"})
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 100)
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, 5_000 + 42 * 100 - 1)], timeout=10)
    assert tp.offset == 42
    c.close()
