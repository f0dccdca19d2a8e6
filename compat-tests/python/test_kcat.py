"""kcat (Debian, librdkafka 2.0.2 — the oldest librdkafka to support): metadata,
produce and consume with every codec through the command-line tool."""

import subprocess
import uuid

import pytest

NOT_OFFERED = {
    "kcat (librdkafka 2.0.2)": {
        "admin.topics": "kcat has no admin commands (topics are auto-created)",
        "admin.configs": "kcat has no admin commands",
        "admin.groups": "kcat has no admin commands",
        "admin.delete_records": "kcat has no admin commands",
        "transactions": "kcat has no transaction commands",
        "groups.kip848": "kcat 1.7 (librdkafka 2.0.2) predates KIP-848",
        "admin.log_dirs": "kcat has no admin commands",
        "admin.transactions": "kcat has no admin commands",
    }
}


def kcat(broker, *args, stdin=None):
    return subprocess.run(["kcat", "-b", broker["bootstrap"], *args], input=stdin,
                          capture_output=True, timeout=60, check=True)


@pytest.mark.capability("kcat (librdkafka 2.0.2)", "admin.cluster")
def test_metadata_lists_the_broker(broker):
    out = kcat(broker, "-L").stdout.decode()
    assert f"broker 0 at {broker['bootstrap']}" in out


@pytest.mark.capability("kcat (librdkafka 2.0.2)", "round_trip", "codecs")
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_then_consume_round_trip(broker, codec):
    topic = f"kcat-{codec}-{uuid.uuid4().hex[:8]}"
    lines = [f"key{i}:value {i}" for i in range(500)]
    kcat(broker, "-P", "-t", topic, "-K", ":", "-z", codec, stdin="\n".join(lines).encode())
    out = kcat(broker, "-C", "-t", topic, "-e", "-f", "%k:%s:%o\n").stdout.decode().splitlines()
    assert out == [f"key{i}:value {i}:{i}" for i in range(500)]
    listing = kcat(broker, "-L", "-t", topic).stdout.decode()
    assert f'topic "{topic}" with 1 partitions' in listing


@pytest.mark.capability("kcat (librdkafka 2.0.2)", "partitions", "idempotence")
def test_keyed_records_over_many_partitions_with_the_idempotent_producer(broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = f"kcat-many-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker["bootstrap"]})
    admin.create_topics([NewTopic(topic, 16, 1)])[topic].result(timeout=15)
    lines = [f"key{i % 200}:value {i}" for i in range(4000)]
    kcat(broker, "-P", "-t", topic, "-K", ":", "-X", "enable.idempotence=true", "-X", "acks=all",
         stdin="\n".join(lines).encode())
    out = kcat(broker, "-C", "-t", topic, "-e", "-f", "%p %k %s\n").stdout.decode().splitlines()
    assert len(out) == 4000
    partitions_of_key = {}
    for line in out:
        part, key, _ = line.split(" ", 2)
        partitions_of_key.setdefault(key, set()).add(part)
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key stays in one partition"
    assert len({next(iter(p)) for p in partitions_of_key.values()}) >= 12, "keys spread over the partitions"


@pytest.mark.capability("kcat (librdkafka 2.0.2)", "by_time")
def test_consume_from_a_timestamp(broker):
    import time
    topic = f"kcat-time-{uuid.uuid4().hex[:8]}"
    kcat(broker, "-P", "-t", topic, stdin=b"\n".join(b"early %d" % i for i in range(10)))
    time.sleep(0.3)
    middle = int(time.time() * 1000)
    time.sleep(0.3)
    kcat(broker, "-P", "-t", topic, stdin=b"\n".join(b"late %d" % i for i in range(5)))
    out = kcat(broker, "-C", "-t", topic, "-o", f"s@{middle}", "-e", "-f", "%s:%o\n").stdout.decode().splitlines()
    assert out == [f"late {i}:{10 + i}" for i in range(5)]
