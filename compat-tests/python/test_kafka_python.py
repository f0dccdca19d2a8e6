"""kafka-python (pure Python, its own protocol code): consumer groups with commits, a
second member taking over, KafkaAdminClient's group calls, and the transactional producer."""

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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
