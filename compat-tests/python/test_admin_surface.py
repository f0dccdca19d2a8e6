"""The admin calls tools make beyond topics and groups: DeleteRecords, ElectLeaders and
DescribeUserScramCredentials through confluent-kafka. On one node their truthful answers are
simple, and checked as such. (kafka-python's DescribeLogDirs speaks only v0, which Kafka 4
dropped and Ferrite does not serve; tests/admin.rs checks DescribeLogDirs.)"""

import uuid

import pytest
from confluent_kafka import (Consumer, ElectionType, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec


def fresh_topic(broker, partitions=2, records=20):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    topic = f"adm-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)
    p = Producer({"bootstrap.servers": broker["bootstrap"]})
    for i in range(records):
        p.produce(topic, value=b"r%d" % i, partition=i % partitions)
    assert p.flush(15) == 0
    return admin, topic


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.delete_records")
def test_delete_records_moves_the_log_start(broker):
    admin, topic = fresh_topic(broker)
    fs = admin.delete_records([TopicPartition(topic, 0, 4), TopicPartition(topic, 1, -1)])
    low = {tp.partition: f.result(timeout=15).low_watermark for tp, f in fs.items()}
    assert low == {0: 4, 1: 10}
    earliest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    assert list(earliest.values())[0].result(timeout=15).offset == 4
    c = Consumer({"bootstrap.servers": broker["bootstrap"], "group.id": "unused", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])  # below the log start: reset to earliest
    m = None
    for _ in range(50):
        m = c.poll(0.2)
        if m is not None and not m.error():
            break
    assert m is not None and m.offset() == 4
    c.close()
    beyond = admin.delete_records([TopicPartition(topic, 0, 1000)])
    with pytest.raises(KafkaException, match="OFFSET_OUT_OF_RANGE"):
        list(beyond.values())[0].result(timeout=15)


def test_elect_leaders_is_not_needed(broker):
    admin, topic = fresh_topic(broker, records=0)
    res = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(timeout=15)
    err = res[TopicPartition(topic, 0)]
    assert err is not None and "ELECTION_NOT_NEEDED" in str(err)


def test_scram_credentials_are_empty(broker):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    described = admin.describe_user_scram_credentials().result(timeout=15)
    assert described == {}
    fs = admin.describe_user_scram_credentials(["alice"])
    with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND"):
        fs["alice"].result(timeout=15)
