#!/usr/bin/env python3
"""Live-mode benchmark: label latency after window close, and CPU use, at a given line rate.

    python3 Benchmarks/live_latency.py --binary .build/release/feedbackd --rate 10000 --seconds 30

Starts `feedbackd run` on a fresh state directory, appends Logstash-style lines at RATE lines/s
with the current time as their event time (predictions, clicks 0.5-5 s later for ~20% of them,
request logs), and watches the dataset directory. For every row that becomes visible it
records how long after its window closed (predicted_at + window) it appeared. Prints p50/p99
latency, rows, CPU seconds used by the daemon and CPU % of one core. Loopback only; ends by
itself.
"""

import argparse
import heapq
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timezone

WINDOW = 10.0


def stamp(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/feedbackd")
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="feedbackd-live-bench-")
    logs = os.path.join(work, "logs")
    os.makedirs(logs)
    config = os.path.join(work, "feedbackd.yaml")
    with open(config, "w") as f:
        f.write(f"""
state_dir: {work}/state
sources:
  - name: app
    paths: ["{logs}/app.log*"]
    format: logstash
events:
  prediction: {{ where: {{ event: prediction }}, key: request_id }}
  feedback:
    click: {{ where: {{ event: click }}, key: request_id }}
labels:
  clicked: {{ from: click, window: 10s }}
datasets:
  - name: ctr
    path: {work}/datasets/ctr
    labels: [clicked]
    columns: [model_version, score]
    format: jsonl
    roll: {{ max_bytes: 64MiB, max_age: 1s }}
watermark: {{ max_out_of_order: 1s, idle_timeout: 5s }}
http: {{ listen: "127.0.0.1:{random.randint(20000, 60000)}" }}
""")
    daemon = subprocess.Popen([args.binary, "run", "--config", config], stderr=open(os.path.join(work, "daemon.log"), "w"))
    time.sleep(1.0)
    rng = random.Random(1)
    out = open(os.path.join(logs, "app.log"), "ab", buffering=1 << 20)
    pending = []  # (due, line) clicks
    seen_files = set()
    latencies = []
    start = time.time()
    cpu_start = cpu_seconds(daemon.pid)
    written = 0
    n = 0
    next_scan = start
    batch = max(1, args.rate // 100)
    while time.time() - start < args.seconds:
        now = time.time()
        target = int((now - start) * args.rate)
        chunk = []
        while written < target:
            if pending and pending[0][0] <= now:
                _, line = heapq.heappop(pending)
                chunk.append(line)
            elif written % 2 == 0:
                n += 1
                rid = "r-%d" % n
                chunk.append(json.dumps({"@timestamp": stamp(now), "@version": "1", "event": "prediction", "request_id": rid,
                                         "model_version": "v1", "score": round(rng.random(), 4),
                                         "features": {"category": "shoes", "device": "mobile"}}))
                if rng.random() < 0.2:
                    due = now + rng.uniform(0.5, 5.0)
                    heapq.heappush(pending, (due, json.dumps({"@timestamp": stamp(due), "@version": "1", "event": "click", "request_id": rid})))
            else:
                chunk.append(json.dumps({"@timestamp": stamp(now), "@version": "1", "event": "http_request", "method": "GET",
                                         "path": "/p/%d" % rng.randrange(10000), "status": 200, "duration_ms": rng.randrange(50)}))
            written += 1
        if chunk:
            out.write(("\n".join(chunk) + "\n").encode())
            out.flush()
        if now >= next_scan:
            next_scan = now + 0.1
            for root, _, files in os.walk(os.path.join(work, "datasets", "ctr")):
                for name in files:
                    if not name.startswith("part-"):
                        continue
                    path = os.path.join(root, name)
                    if path in seen_files:
                        continue
                    seen_files.add(path)
                    with open(path) as f:
                        for row in f:
                            r = json.loads(row)
                            t = datetime.strptime(r["predicted_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
                            latencies.append(now - (t + WINDOW))
        time.sleep(max(0, 1.0 / 100 - (time.time() - now)))
    elapsed = time.time() - start
    cpu = cpu_seconds(daemon.pid) - cpu_start
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    latencies.sort()
    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    print(json.dumps({
        "rate_lines_per_s": args.rate, "lines_written": written, "seconds": round(elapsed, 1),
        "rows_seen": len(latencies), "latency_p50_s": round(pct(0.5), 3), "latency_p99_s": round(pct(0.99), 3),
        "daemon_cpu_s": round(cpu, 2), "daemon_cpu_percent_of_one_core": round(100 * cpu / elapsed, 1),
    }))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
