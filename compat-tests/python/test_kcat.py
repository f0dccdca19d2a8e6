"""kcat (Debian, librdkafka 2.0.2 — the oldest librdkafka to support): metadata,
produce and consume through the command-line tool."""

import subprocess
import uuid


def kcat(broker, *args, stdin=None):
    return subprocess.run(["kcat", "-b", broker["bootstrap"], *args], input=stdin,
                          capture_output=True, timeout=60, check=True)


def test_metadata_lists_the_broker(broker):
    out = kcat(broker, "-L").stdout.decode()
    assert f"broker 0 at {broker['bootstrap']}" in out


def test_produce_then_consume_round_trip(broker):
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    lines = [f"key{i}:value {i}" for i in range(500)]
    kcat(broker, "-P", "-t", topic, "-K", ":", "-z", "snappy", stdin="\n".join(lines).encode())
    out = kcat(broker, "-C", "-t", topic, "-e", "-f", "%k:%s:%o\n").stdout.decode().splitlines()
    assert out == [f"key{i}:value {i}:{i}" for i in range(500)]
    listing = kcat(broker, "-L", "-t", topic).stdout.decode()
    assert f'topic "{topic}" with 1 partitions' in listing
