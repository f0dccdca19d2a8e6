"""kafka-python (pure Python, its own protocol code): consumer groups with commits, a
second member taking over, KafkaAdminClient's group calls, and the transactional producer."""

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.structs import OffsetAndTimestamp

KP = "kafka-python 2.3"
NOT_OFFERED = {
    KP: {
        "groups.kip848": "kafka-python 2.3 speaks only the classic group protocol",
        "admin.log_dirs": "kafka-python 2.3 sends DescribeLogDirs v0, which Kafka 4 removed (KIP-896)",
        "admin.transactions": "kafka-python 2.3 has no DescribeTransactions/ListTransactions",
    }
}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.capability(KP, "round_trip", "codecs", "idempotence")
@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_every_codec_idempotent(broker, codec):
    bs = broker["bootstrap"]
    topic = unique("kp-rt")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=bs, compression_type=codec, enable_idempotence=True, acks="all")
    for i in range(100):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0, timestamp_ms=1_700_000_000_000 + i,
               headers=[("h", b"x%d" % i)])
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([TopicPartition(topic, 0)])
    got = list(c)
    c.close()
    assert [(m.offset, m.key, m.value, m.timestamp, m.headers) for m in got] == [
        (i, b"k%d" % i, b"v%d" % i, 1_700_000_000_000 + i, [("h", b"x%d" % i)]) for i in range(100)]
    admin.close()


@pytest.mark.capability(KP, "partitions", "by_time")
def test_many_partitions_and_offsets_by_time(broker):
    bs = broker["bootstrap"]
    topic = unique("kp-many")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, num_partitions=32, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=bs, linger_ms=5)
    for i in range(3200):
        p.send(topic, value=b"%d" % i, partition=i % 32, timestamp_ms=10_000 + i)
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, consumer_timeout_ms=3000)
    tps = [TopicPartition(topic, i) for i in range(32)]
    c.assign(tps)
    c.seek_to_beginning()
    got = list(c)
    assert len(got) == 3200 and {m.partition for m in got} == set(range(32))
    # Partition 5 holds timestamps 10_005, 10_037, ...: the first at or after 10_100 is 10_101 (offset 3).
    found = c.offsets_for_times({TopicPartition(topic, 5): 10_100})
    assert found[TopicPartition(topic, 5)].offset == 3
    assert c.end_offsets([TopicPartition(topic, 5)])[TopicPartition(topic, 5)] == 100
    c.close()
    admin.close()


@pytest.mark.capability(KP, "admin.topics", "admin.configs", "admin.cluster", "admin.delete_records")
def test_admin_topics_configs_cluster_and_records(broker):
    bs = broker["bootstrap"]
    topic = unique("kp-admin")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, topic_configs={"retention.ms": "3600000"})])
    assert topic in admin.list_topics()
    [described] = admin.describe_topics([topic])
    assert len(described["partitions"]) == 2
    admin.create_partitions({topic: NewPartitions(total_count=4)})
    [described] = admin.describe_topics([topic])
    assert len(described["partitions"]) == 4
    res = ConfigResource(ConfigResourceType.TOPIC, topic)
    configs = {e[0]: e[1] for e in admin.describe_configs([res])[0].resources[0][4]}
    assert configs["retention.ms"] == "3600000"
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})])
    configs = {e[0]: e[1] for e in admin.describe_configs([res])[0].resources[0][4]}
    assert configs["retention.ms"] == "7200000"
    cluster = admin.describe_cluster()
    assert [b["node_id"] for b in cluster["brokers"]] == [0] and cluster["controller_id"] == 0
    p = KafkaProducer(bootstrap_servers=bs)
    for i in range(10):
        p.send(topic, value=b"r", partition=0)
    p.flush(30)
    p.close()
    result = admin.delete_records({TopicPartition(topic, 0): 6})
    assert result[TopicPartition(topic, 0)]["low_watermark"] == 6
    c = KafkaConsumer(bootstrap_servers=bs)
    assert c.beginning_offsets([TopicPartition(topic, 0)])[TopicPartition(topic, 0)] == 6
    c.close()
    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
    admin.close()


@pytest.mark.capability("kafka-python 2.3", "groups", "admin.groups")
def test_group_consumers_commit_and_hand_over(broker):
    bs = broker["bootstrap"]
    topic, group = unique("kp"), unique("kpg")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=bs)
    for i in range(90):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % 3)
    p.flush(30)
    p.close()

    def consumer():
        return KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500)

    a = consumer()
    seen = set()
    deadline = time.time() + 60
    while len(seen) < 45 and time.time() < deadline:
        for tp, msgs in a.poll(timeout_ms=200, max_records=5).items():
            for m in msgs:
                seen.add((m.partition, m.offset))
        a.commit()
    assert len(seen) >= 45
    a.close()  # LeaveGroup; committed offsets stay

    committed = {p: admin.list_consumer_group_offsets(group).get(TopicPartition(topic, p)) for p in range(3)}
    assert all(c is not None for c in committed.values())

    b = consumer()
    deadline = time.time() + 60
    while len(seen) < 90 and time.time() < deadline:
        for tp, msgs in b.poll(timeout_ms=200).items():
            for m in msgs:
                assert (m.partition, m.offset) not in seen, "the next member resumed at the commits"
                seen.add((m.partition, m.offset))
        b.commit()
    assert seen == {(p, o) for p in range(3) for o in range(30)}

    groups = [g[0] if isinstance(g, tuple) else g.group for g in admin.list_consumer_groups()]
    assert group in groups
    desc = admin.describe_consumer_groups([group])[0]
    assert desc.state == "Stable" and len(desc.members) == 1
    b.close()
    [(gid, err)] = admin.delete_consumer_groups([group])
    assert gid == group and err.errno == 0, err
    [(_, err)] = admin.delete_consumer_groups([group])
    assert err.errno == 69, err  # GROUP_ID_NOT_FOUND
    admin.close()


@pytest.mark.capability("kafka-python 2.3", "transactions")
def test_transactional_producer_and_read_committed(broker):
    bs = broker["bootstrap"]
    topic, group = unique("kp-txn"), unique("kp-txn-g")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=bs, transactional_id=unique("kp-tx"))
    p.init_transactions()
    p.begin_transaction()
    for i in range(20):
        p.send(topic, value=b"committed-%d" % i, partition=0)
    p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)}, group)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(10):
        p.send(topic, value=b"aborted-%d" % i, partition=0)
    p.flush()
    p.abort_transaction()
    p.close()

    def read(isolation):
        c = KafkaConsumer(bootstrap_servers=bs, isolation_level=isolation, enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=3000)
        c.assign([TopicPartition(topic, 0)])
        got = [m.value for m in c]
        c.close()
        return got

    committed = read("read_committed")
    assert committed == [b"committed-%d" % i for i in range(20)]
    assert len(read("read_uncommitted")) == 30
    offsets = admin.list_consumer_group_offsets(group)
    assert offsets[TopicPartition(topic, 0)].offset == 7, offsets
    admin.close()
