#!/usr/bin/env python3
"""Lines up a fixed-rate latency run's samples with Ferrite's request log, window by window.

Why: an end-to-end latency tail is made of episodes, and the samples alone cannot say
whether records waited in the producer, the broker or the consumer. The request log
(`FERRITE_LOG=ferrite::request=debug`, which `compare --broker-log FILE` writes) gives
each request's handler, response-queue and send time; both use the wall clock.

    cargo bench --bench compare -- --rounds 1 --only ferrite --scenario latency \\
        --no-touch --latency-dir /tmp/ld --broker-log /tmp/requests.log
    python3 benches/latency_episodes.py /tmp/ld/cmp-0-latency-half.txt /tmp/requests.log

Prints, for every window (20 ms) within 100 ms of one whose worst latency passes the
threshold (10 ms): the worst latency of the records *sent* in it, then the produce and
fetch requests the broker *received* in it — how many, and their worst handler, queue
and send times in ms. A consumer that stops fetching shows as a fetch count near zero
while produce requests keep coming.
"""
import argparse
import collections
import datetime
import re


def read_samples(path):
    with open(path) as f:
        head = f.readline()
        m = re.search(r"first record sent at (\d+) µs since the epoch; offered (\d+) records/s", head)
        if not m:
            raise SystemExit(f"{path}: not the samples of a fixed-rate run (its first line: {head.strip()!r})")
        latencies = [int(line) / 1e6 for line in f]
    return int(m.group(1)) / 1e6, int(m.group(2)), latencies


LINE = re.compile(
    r"^(\S+?)Z? .*api_key=(\d+) .*total_ms=([\d.e-]+) local_ms=([\d.e-]+) "
    r"response_queue_ms=([\d.e-]+) send_ms=([\d.e-]+)"
)


def read_requests(path, start, end):
    """(received, api_key, local, queue, send) of each request received in [start, end]."""
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        done = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
        total, local, queue, send = map(float, m.group(3, 4, 5, 6))
        received = done - total / 1e3
        if start <= received <= end:
            yield received, int(m.group(2)), local, queue, send


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("samples")
    ap.add_argument("request_log")
    ap.add_argument("--window-ms", type=float, default=20)
    ap.add_argument("--threshold-ms", type=float, default=10)
    a = ap.parse_args()
    start, rate, latencies = read_samples(a.samples)
    win = a.window_ms / 1e3
    # One partition: records arrive in send order, so line i was sent at start + i / rate.
    worst = collections.defaultdict(float)
    for i, lat in enumerate(latencies):
        w = int(i / rate / win)
        worst[w] = max(worst[w], lat)
    new = lambda: {"n": 0, "local": 0.0, "queue": 0.0, "send": 0.0}
    produce, fetch = collections.defaultdict(new), collections.defaultdict(new)
    end = start + len(latencies) / rate + 1
    for received, key, local, queue, send in read_requests(a.request_log, start, end):
        table = produce if key == 0 else fetch if key == 1 else None
        if table is not None:
            row = table[int((received - start) / win)]
            row["n"] += 1
            row["local"], row["queue"], row["send"] = max(row["local"], local), max(row["queue"], queue), max(row["send"], send)
    reach = int(0.1 / win)
    shown = sorted({w + d for w, v in worst.items() if v * 1e3 > a.threshold_ms for d in range(-reach, reach + 1)} & set(worst))
    print(f"{len(latencies)} records at {rate} records/s; windows of {a.window_ms:g} ms around latencies over {a.threshold_ms:g} ms")
    print("  t ms  worst ms | produce: n handler queue send | fetch: n handler queue send")
    previous = None
    for w in shown:
        if previous is not None and w != previous + 1:
            print("   ...")
        previous = w
        p, f = produce[w], fetch[w]
        print(
            f"{w * a.window_ms:6.0f} {worst[w] * 1e3:9.1f} | {p['n']:10d} {p['local']:7.2f} {p['queue']:5.2f} {p['send']:4.2f}"
            f" | {f['n']:8d} {f['local']:7.2f} {f['queue']:5.2f} {f['send']:4.2f}"
        )
    if not shown:
        print("no episode: every window's worst latency is under the threshold")


if __name__ == "__main__":
    main()
