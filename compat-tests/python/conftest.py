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


CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"


@pytest.fixture(scope="session")
def cluster():
    """Three combined ferrite nodes (broker and controller each) on 127.0.0.1, formatted
    with one cluster id; yields their bootstrap addresses by node id; each must stop
    cleanly at the end."""
    binary = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "debug" / "ferrite"))
    nodes = {n: {"port": free_port(), "cport": free_port(), "data": tempfile.mkdtemp(prefix=f"ferrite-cluster-{n}-")} for n in (1, 2, 3)}
    voters = ",".join(f"{n}@127.0.0.1:{v['cport']}" for n, v in nodes.items())
    procs = {}
    for n, v in nodes.items():
        args = [binary, "--data-dir", v["data"]]
        for k, val in [
            ("node.id", str(n)),
            ("controller.quorum.voters", voters),
            ("listeners", f"PLAINTEXT://127.0.0.1:{v['port']},CONTROLLER://127.0.0.1:{v['cport']}"),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("group.initial.rebalance.delay.ms", "0"),
        ]:
            args += ["--override", f"{k}={val}"]
        subprocess.run(args + ["format", "--cluster-id", CLUSTER_ID], check=True, capture_output=True)
        # TEST_LOG_DIR=<dir>: each node's log kept there, for a failing test.
        log_dir = os.environ.get("TEST_LOG_DIR")
        err = open(os.path.join(log_dir, f"cluster-node-{n}.log"), "w") if log_dir else subprocess.PIPE
        procs[n] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    for v in nodes.values():
        wait_for_port(v["port"], timeout=60)
    yield {n: f"127.0.0.1:{v['port']}" for n, v in nodes.items()}
    for p in procs.values():
        p.send_signal(signal.SIGTERM)
    for n, p in procs.items():
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, f"node {n}: {(err or b'').decode()[-2000:]}"
    for v in nodes.values():
        shutil.rmtree(v["data"], ignore_errors=True)


# ---- the compatibility matrix ----
# A test declares what it shows with @pytest.mark.capability(client, capability, ...); its
# outcome is appended to $FERRITE_RESULTS/python.jsonl (compat-tests/matrix builds the
# README's table from these files). A module lists what its client does not offer in
# NOT_OFFERED = {client: {capability: why}}.

import json

RESULTS = Path(os.environ.get("FERRITE_RESULTS", ROOT / "compat-tests" / ".work" / "results"))


def record(client, capability, result, test, source="python"):
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{source}.jsonl", "a") as f:
        f.write(json.dumps({"client": client, "capability": capability, "result": result, "test": test}) + "\n")


def pytest_configure(config):
    config.addinivalue_line("markers", "capability(client, *capabilities): what the test shows for the matrix")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        for m in item.iter_markers("capability"):
            client, *caps = m.args
            for cap in caps:
                record(client, cap, "pass" if rep.passed else "fail", item.nodeid)


def pytest_collection_finish(session):
    seen = set()
    for item in session.items:
        module = getattr(item, "module", None)
        if module is None or module in seen:
            continue
        seen.add(module)
        for client, caps in getattr(module, "NOT_OFFERED", {}).items():
            for cap, why in caps.items():
                record(client, cap, "not offered", why)
