"""Topic configuration changes through confluent-kafka's AdminClient: AlterConfigs and
IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT) are visible in DescribeConfigs
and take effect (a lowered max.message.bytes refuses a larger record)."""

import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, NewTopic, ResourceType)


def topic_configs(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=15)


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.configs")
def test_incremental_and_full_alter_configs(broker):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    topic = f"cfg-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    got = topic_configs(admin, topic)
    assert got["retention.ms"].value == "3600000"
    assert got["cleanup.policy"].value == "delete,compact"
    assert got["max.message.bytes"].value == "2000"

    # It takes effect: a 5 kB record is now too large for this topic.
    p = Producer({"bootstrap.servers": broker["bootstrap"], "message.max.bytes": 100000,
                  "compression.type": "none"})
    errors = []
    p.produce(topic, value=b"x" * 5000, on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors and errors[0] is not None and "MSG_SIZE_TOO_LARGE" in str(errors[0])

    # DELETE and SUBTRACT.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
    ])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    got = topic_configs(admin, topic)
    assert got["retention.ms"].source == 5  # back to the default
    assert got["cleanup.policy"].value == "compact"

    # AlterConfigs replaces the whole set of overrides.
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "1048576"})
    admin.alter_configs([res])[res].result(timeout=15)
    got = topic_configs(admin, topic)
    assert got["segment.bytes"].value == "1048576"
    assert got["cleanup.policy"].value == "delete", "earlier overrides are gone"
    assert got["max.message.bytes"].source == 5

    # Bad values and unknown topics get Kafka's errors.
    bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException, match="INVALID_CONFIG"):
        admin.incremental_alter_configs([bad])[bad].result(timeout=15)
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic", set_config={"retention.ms": "1"})
    with pytest.raises(KafkaException, match="UNKNOWN_TOPIC_OR_PART"):
        admin.alter_configs([missing])[missing].result(timeout=15)


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.configs")
def test_dynamic_broker_configs_are_topic_defaults(broker):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    topic = f"dyn-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1048576"})])[topic].result(timeout=15)
    node = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", "691200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([node])[node].result(timeout=15)
    try:
        got = topic_configs(admin, topic)
        assert got["retention.ms"].value == "691200000"
        assert got["retention.ms"].source == 2  # DYNAMIC_BROKER_CONFIG
        assert got["segment.bytes"].value == "1048576", "the topic's own override still wins"
        b = ConfigResource(ResourceType.BROKER, "0")
        described = admin.describe_configs([b])[b].result(timeout=15)
        assert described["log.retention.ms"].value == "691200000" and described["log.retention.ms"].source == 2
        assert not described["log.retention.ms"].is_read_only
        assert described["num.partitions"].is_read_only
        # Static-only keys are refused, saying where to set them.
        static = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
            ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
        with pytest.raises(KafkaException, match="restart"):
            admin.incremental_alter_configs([static])[static].result(timeout=15)
    finally:
        undo = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
            ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
        admin.incremental_alter_configs([undo])[undo].result(timeout=15)
    got = topic_configs(admin, topic)
    assert got["retention.ms"].value == "604800000" and got["retention.ms"].source == 5


@pytest.mark.capability("confluent-kafka 2.16 (Python)", "admin.configs")
def test_min_insync_replicas_takes_effect_for_acks_all(broker):
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    topic = f"isr-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1, config={"min.insync.replicas": "2"})])[topic].result(timeout=15)

    def produce(acks):
        errors = []
        p = Producer({"bootstrap.servers": broker["bootstrap"], "acks": acks, "retries": 0,
                      "enable.idempotence": False, "message.timeout.ms": 5000})
        p.produce(topic, value=b"v", on_delivery=lambda err, msg: errors.append(err))
        p.flush(15)
        return errors

    failed = produce("all")
    assert failed and failed[0] is not None and "NOT_ENOUGH_REPLICAS" in str(failed[0]), failed
    assert produce("1") == [None], "acks=1 does not need the in-sync replicas"
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("min.insync.replicas", "1", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    assert produce("all") == [None]
