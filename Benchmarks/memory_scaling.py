#!/usr/bin/env python3
"""Peak RSS of `feedbackd replay` as the pending state grows (issue #4: under 100 MB whatever
the corpus size).

    python3 Benchmarks/memory_scaling.py --binary .build/release/feedbackd \
        --predictions 1000000,2000000,4000000

For each N, `feedbackd-loggen` (--loggen, default next to --binary) writes N predictions (with its clicks,
purchases and noise; about 514 bytes of log per prediction, spread over two days of event time)
in 3 rotated files (the newest plain, the oldest gzipped) into DIR/N/logs (once;
reused while DIR/N/logs is there), and the job labels clicks within **7 days**: no window closes
before the end, so all N predictions are pending at once and the state that does not fit
`state_memory` (default 12 MiB) lives in SQLite. `feedbackd replay --flush` then writes every
row. Reports per N: lines, wall time, MB/s (decompressed bytes), peak RSS (the child's
ru_maxrss), rows written and what the replay summary says about the state; then one JSON line.
Exits 1 if a run fails or writes a row count other than N.

Peak RSS is the whole process: the state (bounded by state_memory), the filter of the keys held
in SQLite (at most 16 MiB), SQLite's page cache, read-ahead and writer buffers.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

CONFIG = """# memory_scaling.py: every prediction stays pending until the flush.
state_dir: "{dir}/state"
sources:
  - name: shop
    paths: ["{dir}/logs/app.log*"]
    format: logstash
events:
  prediction: {{ where: {{ event: prediction }}, key: request_id }}
  feedback:
    click: {{ where: {{ event: click }}, key: request_id }}
labels:
  clicked: {{ from: click, window: 7d }}
datasets:
  - name: ctr
    path: "{dir}/out/ctr"
    labels: [clicked]
    columns:
      - model_version
      - score
      - {{ path: features.item_category, as: category }}
    format: jsonl
"""


def decompressed_bytes(logs):
    total = 0
    for name in sorted(os.listdir(logs)):
        path = os.path.join(logs, name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
    return total


def run_child(argv, stdout):
    """Runs argv; returns (exit status, wall seconds, peak RSS in KB) of that child alone."""
    start = time.monotonic()
    child = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        sys.stderr.write(err)
    return child.returncode, wall, usage.ru_maxrss


def rows_written(out):
    rows = 0
    for root, _, files in os.walk(out):
        for name in files:
            if name.endswith(".jsonl"):
                with open(os.path.join(root, name), "rb") as f:
                    rows += sum(1 for _ in f)
            elif name.endswith(".jsonl.gz"):
                with gzip.open(os.path.join(root, name), "rb") as f:
                    rows += sum(1 for _ in f)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/feedbackd")
    parser.add_argument("--loggen", help="feedbackd-loggen (default: next to --binary)")
    parser.add_argument("--predictions", default="1000000,2000000,4000000")
    parser.add_argument("--dir", default=".build/bench-memory")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.path.isfile(binary):
        sys.exit(f"memory_scaling.py: --binary {binary} not found (swift build -c release --product feedbackd)")
    loggen = os.path.abspath(args.loggen or os.path.join(os.path.dirname(binary), "feedbackd-loggen"))
    if not os.path.isfile(loggen):
        sys.exit(
            f"memory_scaling.py: {loggen} not found: pass --loggen "
            "(swift build -c release --product feedbackd-loggen)"
        )
    results = []
    failed = False
    for n in [int(x) for x in args.predictions.split(",")]:
        d = os.path.abspath(os.path.join(args.dir, str(n)))
        logs = os.path.join(d, "logs")
        if not os.path.isdir(logs):
            os.makedirs(d, exist_ok=True)
            subprocess.run(
                [loggen, "--out", logs, "--seed", "4", "--predictions", str(n), "--files", "3",
                 "--format", "logstash"],
                check=True, stdout=subprocess.DEVNULL)
        config = os.path.join(d, "job.yaml")
        with open(config, "w") as f:
            f.write(CONFIG.format(dir=d))
        for sub in ("state", "out"):
            shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
        size = decompressed_bytes(logs)
        with open(os.path.join(d, "replay.stdout"), "w") as out:
            status, wall, rss_kb = run_child([binary, "replay", "--config", config, "--flush"], out)
        with open(os.path.join(d, "replay.stdout")) as f:
            summary = f.read()
        state = next((line.strip() for line in summary.splitlines() if line.startswith("state")), "")
        rows = rows_written(os.path.join(d, "out"))
        ok = status == 0 and rows == n
        failed |= not ok
        result = {
            "predictions": n, "mb": round(size / 1e6, 1), "seconds": round(wall, 2),
            "mb_per_s": round(size / 1e6 / wall, 1), "peak_rss_mb": round(rss_kb / 1000, 1), "rows": rows,
            "ok": ok,
        }
        results.append(result)
        print(f"{n:>9,} pending  {size / 1e6:7.1f} MB  {wall:7.2f} s  {size / 1e6 / wall:6.1f} MB/s  "
              f"peak RSS {rss_kb / 1000:6.1f} MB  rows {rows:,}{'' if ok else '  FAILED'}")
        print(f"          {state}")
        sys.stdout.flush()
    print(json.dumps({"memory_scaling": results}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
