#!/usr/bin/env python3
"""Side-by-side replays of two (or more) feedbackd binaries, with each thread's CPU.

    python3 Benchmarks/ab_threads.py --dir .build/bench-corpus --runs 10 OLD_BINARY NEW_BINARY

Runs `BINARY replay --config DIR/bench.yaml --flush` for each binary in turn, `--runs` rounds
(alternating, so a slow or fast stretch of this noisy machine hits all binaries alike), on
fresh DIR/state and DIR/out (the last ones moved aside, then `sync`, untimed; deleted at the
end: `benchlock.set_aside`). While a replay runs, it polls
`/proc/PID/task/TID/schedstat` every 20 ms and keeps each thread's last reading: time on a core
and time runnable but waiting for one. Per run it prints the wall time, the engine's (pipeline)
thread's CPU, all threads' CPU, and wall over all CPU; at the end the medians per binary, the
mean of wall over CPU, and, for each later binary, in how many rounds each was lower than the
first's. Wall over CPU is the figure to compare on this VM: its speed moves a binary's CPU time
by ±20% from run to run and the wall time with it, while their ratio, how well the threads
overlap on the two cores, moves by about ±1%. With `--threads` it also prints each
kind of thread's CPU and wait for a core, per run.

Linux only (`/proc`). Threads are grouped by name: the engine's thread is the Swift
concurrency thread the replay runs on (`*default-qos*` in `/proc`), the others are named by
feedbackd (`inflate-ahead`, `read-ahead`, `dataset-writer`, `dataset-sync`).
"""

import argparse
import benchlock
import os
import statistics
import subprocess
import sys
import time


def replay(binary, corpus):
    """One replay: (wall seconds, {thread kind: [cpu s, wait s, threads]})."""
    benchlock.set_aside(corpus)
    os.sync()
    start = time.monotonic()
    child = subprocess.Popen(
        [binary, "replay", "--config", os.path.join(corpus, "bench.yaml"), "--flush"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = {}
    while child.poll() is None:
        try:
            tids = os.listdir(f"/proc/{child.pid}/task")
        except FileNotFoundError:
            break
        for tid in tids:
            try:
                with open(f"/proc/{child.pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{child.pid}/task/{tid}/schedstat") as f:
                    run, wait, _ = map(int, f.read().split())
                last[tid] = (comm, run, wait)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
        time.sleep(0.02)
    wall = time.monotonic() - start
    if child.wait() != 0:
        sys.exit(f"ab_threads.py: {binary} replay exited with {child.returncode}")
    kinds = {}
    for comm, run, wait in last.values():
        kind = "pipeline" if "default-qos" in comm else comm
        entry = kinds.setdefault(kind, [0.0, 0.0, 0])
        entry[0] += run / 1e9
        entry[1] += wait / 1e9
        entry[2] += 1
    return wall, kinds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--dir", default=".build/bench-corpus", help="the corpus directory (bench.yaml in it)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", action="store_true", help="print each kind of thread's CPU per run")
    args = parser.parse_args()
    if not os.path.exists(f"/proc/{os.getpid()}/task"):
        sys.exit("ab_threads.py: needs Linux /proc")
    if not os.path.exists(os.path.join(args.dir, "bench.yaml")):
        sys.exit(f"ab_threads.py: no {args.dir}/bench.yaml; run `feedbackd-bench corpus` first")
    lock = benchlock.hold(os.path.abspath(args.dir), "ab_threads.py")  # noqa: F841 (held until exit)
    results = {b: [] for b in args.binaries}
    for round_ in range(args.runs):
        for binary in args.binaries:
            wall, kinds = replay(binary, args.dir)
            pipeline = kinds.get("pipeline", [0.0, 0.0, 0])[0]
            total = sum(k[0] for k in kinds.values())
            results[binary].append((wall, pipeline, total, wall / total))
            print(f"{round_ + 1:3d} {binary}: wall {wall:.3f} s, pipeline CPU {pipeline:.3f} s, all CPU {total:.3f} s, "
                  f"wall/CPU {wall / total:.3f}", flush=True)
            if args.threads:
                for kind, (cpu, wait, n) in sorted(kinds.items(), key=lambda item: -item[1][0]):
                    print(f"      {kind:16s} x{n}  CPU {cpu:6.3f} s  waiting for a core {wait:6.3f} s")
    first = results[args.binaries[0]]
    for binary in args.binaries:
        runs = results[binary]
        print(f"{binary}: median wall {statistics.median(r[0] for r in runs):.3f} s, "
              f"pipeline CPU {statistics.median(r[1] for r in runs):.3f} s, "
              f"all CPU {statistics.median(r[2] for r in runs):.3f} s, "
              f"wall/CPU mean {statistics.mean(r[3] for r in runs):.4f}")
        if binary != args.binaries[0]:
            for k, name in enumerate(("wall", "pipeline CPU", "all CPU", "wall/CPU")):
                lower = sum(1 for a, b in zip(first, runs) if b[k] < a[k])
                print(f"    {name} lower than {args.binaries[0]} in {lower} of {len(runs)}")
    benchlock.clear_set_aside(args.dir)


if __name__ == "__main__":
    main()
