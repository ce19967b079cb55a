#!/usr/bin/env python3
"""Where the machine's CPU time went during each replay: user, system, idle, iowait and steal.

    python3 Benchmarks/system_cpu.py --binary .build/release/feedbackd [--dir .build/bench-corpus] [--runs 3]

Runs `feedbackd replay --config DIR/bench.yaml --flush` `--runs` times and prints, per replay,
its wall time and the change in the first line of /proc/stat over it, in percent of one core
(a 2-core machine has 200%). Nothing else should run meanwhile: the counters are the whole
machine's.

Two things it tells that per-thread figures (`ab_threads.py`) do not:
- **steal**: time the hypervisor gave this VM's vCPUs to someone else. On these VMs it moves
  from hour to hour (3-10% of 200% in the twenty-fourth session), and the replay's wall time
  with it: compare binaries only side by side, in one run.
- **idle + iowait**: core time no thread used. In a replay both cores are busy most of the
  time, but this is what a better overlap of the threads could still win (about 20-25% of
  200% in the twenty-fourth session, part of it at the start and the end, when one thread
  works alone).
"""

import argparse
import benchlock
import os
import subprocess
import sys
import time


def cpu_times():
    """The first line of /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal, ..."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/feedbackd")
    parser.add_argument("--dir", default=".build/bench-corpus")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus = os.path.abspath(args.dir)
    config = os.path.join(corpus, "bench.yaml")
    if not os.path.exists(config):
        sys.exit(f"no {config}: run `feedbackd-bench corpus` first")
    lock = benchlock.hold(corpus, "system_cpu.py")  # noqa: F841 (held until exit)
    cores = os.cpu_count() or 1
    try:
        for run in range(args.runs):
            benchlock.set_aside(corpus)
            before = cpu_times()
            start = time.monotonic()
            done = subprocess.run(
                [args.binary, "replay", "--config", config, "--flush"], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
            wall = time.monotonic() - start
            after = cpu_times()
            if done.returncode != 0:
                sys.exit(f"replay failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
            delta = [b - a for a, b in zip(before, after)]
            total = sum(delta[:8]) or 1

            def share(*fields):
                return 100.0 * cores * sum(delta[i] for i in fields) / total

            print(
                f"run {run + 1}: wall {wall:.3f} s  user {share(0, 1):.0f}%  system {share(2, 5, 6):.0f}%  "
                f"idle {share(3):.0f}%  iowait {share(4):.0f}%  steal {share(7):.0f}%  (of {100 * cores}%)")
    finally:
        benchlock.clear_set_aside(corpus)


if __name__ == "__main__":
    main()
