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
