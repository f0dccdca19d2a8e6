"""Starts one real `ferrite` process for the session and hands its bootstrap address to
the tests; stops it with SIGTERM at the end and checks that it stopped cleanly."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"ferrite did not listen on {port}")


@pytest.fixture(scope="session")
def broker():
    binary = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "debug" / "ferrite"))
    data = tempfile.mkdtemp(prefix="ferrite-compat-")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--data-dir", data, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port)
    yield {"bootstrap": f"127.0.0.1:{port}", "data": Path(data)}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert (Path(data) / ".kafka_cleanshutdown").exists(), "clean shutdown marker written"
    shutil.rmtree(data, ignore_errors=True)
