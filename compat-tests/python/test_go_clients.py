"""The Go clients (Sarama and confluent-kafka-go, Debian's packaged sources) against the
session's broker: compat-tests/go/run runs their `go test` suite, which must pass; each Go
test's outcome is recorded for the matrix under the capabilities it shows."""

import re
import subprocess
from pathlib import Path

from conftest import record

ROOT = Path(__file__).resolve().parents[2]
SARAMA = "Sarama 1.22 (Go)"
CKGO = "confluent-kafka-go 0.11.6 (Go)"
COVERS = {
    "TestSaramaAdminAndCodecs": (SARAMA, ["round_trip", "codecs", "admin.topics"]),
    "TestSaramaConsumerGroup": (SARAMA, ["groups"]),
    "TestSaramaIdempotentManyPartitionsByTime": (SARAMA, ["idempotence", "partitions", "by_time"]),
    "TestSaramaClusterGroupsAndDeleteRecords": (SARAMA, ["admin.cluster", "admin.groups", "admin.delete_records"]),
    "TestConfluentProduceConsumeGroup": (CKGO, ["round_trip", "groups"]),
    "TestConfluentCodecsPartitionsByTime": (CKGO, ["codecs", "partitions", "by_time", "idempotence"]),
    "TestConfluentAdminTopicsAndConfigs": (CKGO, ["admin.topics", "admin.configs"]),
}
NOT_OFFERED = {
    SARAMA: {
        "transactions": "Sarama 1.22 has no transactional producer",
        "groups.kip848": "Sarama 1.22 speaks only the classic group protocol",
        "admin.configs": "Sarama 1.22 sends DescribeConfigs v0, which Kafka 4 removed (KIP-896)",
        "admin.log_dirs": "Sarama 1.22's cluster admin has no DescribeLogDirs",
        "admin.transactions": "Sarama 1.22 has no transaction admin calls",
    },
    CKGO: {
        "transactions": "confluent-kafka-go 0.11.6 predates the transactions API",
        "groups.kip848": "confluent-kafka-go 0.11.6 predates KIP-848",
        "admin.cluster": "confluent-kafka-go 0.11.6's AdminClient has no DescribeCluster",
        "admin.groups": "confluent-kafka-go 0.11.6's AdminClient has no group calls",
        "admin.delete_records": "confluent-kafka-go 0.11.6's AdminClient has no DeleteRecords",
        "admin.log_dirs": "confluent-kafka-go 0.11.6's AdminClient has no DescribeLogDirs",
        "admin.transactions": "confluent-kafka-go 0.11.6 has no transaction admin calls",
    },
}


def test_go_clients(broker):
    proc = subprocess.run([str(ROOT / "compat-tests" / "go" / "run"), broker["bootstrap"]],
                          capture_output=True, text=True, timeout=1200)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(("--- ", "ok", "FAIL", "PASS"))]
    print("\n".join(lines))
    for outcome, name in re.findall(r"^--- (PASS|FAIL): (\w+)", proc.stdout, re.M):
        client, caps = COVERS[name]
        for cap in caps:
            record(client, cap, "pass" if outcome == "PASS" else "fail", f"go test {name}", source="go")
    assert proc.returncode == 0 and "--- FAIL" not in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("--- PASS") >= 3
