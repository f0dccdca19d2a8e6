"""Consumer groups through confluent-kafka (newest librdkafka): members splitting a topic
and committing, and the AdminClient's group calls (list with a state filter, describe,
list/alter offsets, delete groups). confluent-kafka has no OffsetDelete call; the
Rust raw-protocol tests cover it."""

import pytest

import time
import uuid

from confluent_kafka import (ConsumerGroupState, Consumer, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def setup_topic(broker, partitions, count):
    topic = unique("grp")
    a = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)
    p = Producer({"bootstrap.servers": broker["bootstrap"]})
    for i in range(count):
        p.produce(topic, key=str(i).encode(), value=b"v%d" % i, partition=i % partitions)
    assert p.flush(30) == 0
    return topic, a


def member(broker, group, topic):
    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    return c


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "groups")
def test_two_members_split_a_topic_and_commit(broker):
    topic, admin = setup_topic(broker, 4, 200)
    group = unique("g")
    a, b = member(broker, group, topic), member(broker, group, topic)
    seen = {}
    deadline = time.time() + 60
    while len(seen) < 200 and time.time() < deadline:
        for c in (a, b):
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            key = (m.partition(), m.offset())
            assert key not in seen, f"{key} delivered twice"
            c.commit(message=m, asynchronous=False)
            seen[key] = c
    assert len(seen) == 200
    assert {id(c) for c in seen.values()} == {id(a), id(b)}, "both members consumed"
    assigned = [sorted(tp.partition for tp in c.assignment()) for c in (a, b)]
    assert sorted(assigned[0] + assigned[1]) == [0, 1, 2, 3] and all(assigned)

    desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert desc.state == ConsumerGroupState.STABLE
    assert len(desc.members) == 2
    assert sorted(tp.partition for m in desc.members for tp in m.assignment.topic_partitions) == [0, 1, 2, 3]

    listed = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=15)
    assert group in [g.group_id for g in listed.valid]
    empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(timeout=15)
    assert group not in [g.group_id for g in empty.valid]

    offsets = admin.list_consumer_group_offsets(
        [__import__("confluent_kafka").ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(p, 50) for p in range(4)]

    # A member leaving hands its partitions to the other.
    b.close()
    deadline = time.time() + 30
    while time.time() < deadline and len(a.assignment()) < 4:
        a.poll(0.1)
    assert sorted(tp.partition for tp in a.assignment()) == [0, 1, 2, 3]
    a.close()


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.groups")
def test_admin_alters_deletes_offsets_and_groups(broker):
    from confluent_kafka import ConsumerGroupTopicPartitions
    topic, admin = setup_topic(broker, 2, 10)
    group = unique("g")
    # AlterConsumerGroupOffsets on a group without members (OffsetCommit, generation -1).
    res = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])])
    res[group].result(timeout=15)
    got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert sorted((tp.partition, tp.offset) for tp in got.topic_partitions) == [(0, 3), (1, 4)]

    desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert desc.state == ConsumerGroupState.EMPTY and not desc.members

    # A consumer of the group starts at the committed offset.
    c = member(broker, group, topic)
    first = None
    deadline = time.time() + 30
    while first is None and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error() and m.partition() == 0:
            first = m.offset()
    assert first == 3
    # Deleting a group with a live member is refused.
    err = admin.delete_consumer_groups([group])[group].exception(timeout=15)
    assert err is not None and "NON_EMPTY_GROUP" in str(err)
    c.close()

    # DeleteGroups once the group is empty; its offsets go with it.
    admin.delete_consumer_groups([group])[group].result(timeout=15)
    listed = admin.list_consumer_groups().result(timeout=15)
    assert group not in [g.group_id for g in listed.valid]
    got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert all(tp.offset < 0 for tp in got.topic_partitions), "offsets deleted with the group"
    err = admin.delete_consumer_groups([group])[group].exception(timeout=15)
    assert err is not None and "GROUP_ID_NOT_FOUND" in str(err)


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "groups.kip848")
def test_kip848_consumer_protocol_group(broker):
    """group.protocol=consumer: the broker assigns (ConsumerGroupHeartbeat) and the
    AdminClient describes the group with ConsumerGroupDescribe."""
    topic, admin = setup_topic(broker, 4, 100)
    group = unique("g848")

    def member():
        c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": group,
                      "group.protocol": "consumer", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        return c

    a, b = member(), member()
    seen = set()
    deadline = time.time() + 60
    while time.time() < deadline and (len(seen) < 100 or len(a.assignment()) + len(b.assignment()) != 4
                                      or not a.assignment() or not b.assignment()):
        for c in (a, b):
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            assert (m.partition(), m.offset()) not in seen
            c.commit(message=m, asynchronous=False)
            seen.add((m.partition(), m.offset()))
    assert len(seen) == 100
    parts = sorted(tp.partition for c in (a, b) for tp in c.assignment())
    assert parts == [0, 1, 2, 3]
    desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert len(desc.members) == 2
    assert sorted(tp.partition for m in desc.members for tp in m.assignment.topic_partitions) == [0, 1, 2, 3]
    listed = admin.list_consumer_groups().result(timeout=15)
    assert group in [g.group_id for g in listed.valid]
    a.close()
    b.close()
