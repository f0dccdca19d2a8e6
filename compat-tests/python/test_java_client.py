"""The official Java client (kafka-clients 3.9.0 and 4.3.0, each run once with the classic
group protocol and once with the KIP-848 consumer protocol) against the session's broker:
compat-tests/java/run compiles and runs FerriteCompat.java, whose RESULT lines are shown
here, recorded for the matrix (both runs of a version in its row), and must all pass."""

import re
import subprocess
from pathlib import Path

from conftest import record

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"java-3.9.0": "Java kafka-clients 3.9.0", "java-4.3.0": "Java kafka-clients 4.3.0",
           "java-3.9.0-kip848": "Java kafka-clients 3.9.0", "java-4.3.0-kip848": "Java kafka-clients 4.3.0"}


def test_java_clients(broker):
    proc = subprocess.run([str(ROOT / "compat-tests" / "java" / "run"), broker["bootstrap"]],
                          capture_output=True, text=True, timeout=1200)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    print("\n".join(results))
    for line in results:
        m = re.match(r"RESULT (\S+) (\S+) (PASS|FAIL)", line)
        assert m, line
        client, name, outcome = m.groups()
        for cap in name.split(":")[0].split("+"):
            record(CLIENTS[client], cap, "pass" if outcome == "PASS" else "fail", f"FerriteCompat {name}", source="java")
    failed = [line for line in results if " FAIL " in line]
    assert proc.returncode == 0 and not failed and len(results) >= 40, proc.stdout[-4000:] + proc.stderr[-2000:]
