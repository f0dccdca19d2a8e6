"""The Go clients (Sarama and confluent-kafka-go, Debian's packaged sources) against the
session's broker: compat-tests/go/run runs their `go test` suite, which must pass."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_go_clients(broker):
    proc = subprocess.run([str(ROOT / "compat-tests" / "go" / "run"), broker["bootstrap"]],
                          capture_output=True, text=True, timeout=1200)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(("--- ", "ok", "FAIL", "PASS"))]
    print("\n".join(lines))
    assert proc.returncode == 0 and "--- FAIL" not in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("--- PASS") >= 3
