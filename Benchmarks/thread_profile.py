#!/usr/bin/env python3
"""Per-thread profile of `feedbackd replay --flush` on the benchmark corpus.

Runs the replay under `perf record -g` (frame pointers), then reads the samples back with
`perf script` and prints, per thread: its share of all samples, its hottest functions (self
time), and for the pipeline thread what each phase takes (inclusive: a sample counts for the
first phase found on its stack, in the order listed). `perf report --comm` is not used: with
call graphs it mixes other threads' stacks into the one asked for (perf 6.x on this machine).

    python3 Benchmarks/thread_profile.py --binary .build/release/feedbackd [--dir .build/bench-corpus]
        [--callers SUBSTRING ...] [--dwarf] [--timeline MS]

`--timeline 100` also prints, per 100 ms of the run, how busy each kind of thread was (the
pipeline, the read-ahead threads that read, inflate and scan, the dataset writers, the rest), in
percent of one core: whether the pipeline thread is the critical path (busy all the time) or
waits for the others.

`--callers memmove` also prints, per thread, who called the functions matching it when they
were sampled (the two frames above them). With frame-pointer call graphs (the default) a leaf
that sets up no frame of its own (`memmove`, `swift_retain`, …) is shown under its caller's
caller: `--dwarf` unwinds with DWARF instead (`--call-graph dwarf`, exact, at a lower rate).

Needs `perf` (Debian: linux-perf) and the corpus from `feedbackd-bench corpus`.
"""

import argparse
import benchlock
import collections
import os
import shutil
import subprocess
import sys
import tempfile

# Pipeline-thread phases: (name, a substring of a mangled function on the stack).
PHASES = [
    ("due rows", "emitDueRows"),
    ("expiring finished keys", "pruneFinished"),
    ("orphans", "retireOrphans"),
    ("predictions", "processPrediction"),
    ("feedback", "processFeedback"),
    ("classifying", "Rules"),
    ("engine, other", "LabelEngineC7process"),
    ("commits", "PipelineC6commit"),
    ("per-line plumbing", "PipelineC6handle"),
    ("per-line plumbing", "SourceFeedC4line"),
    ("per-line plumbing", "LineCursor"),
    ("per-line plumbing", "SourceTailer"),
]


def samples(path):
    """Yields (thread name, [frames, innermost first]) for each sample of `perf script`."""
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,ip,sym"], capture_output=True, text=True, check=True
    ).stdout
    for block in out.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        frames = []
        for line in lines[1:]:
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "?")
        yield lines[0].strip(), frames


def timeline(path, frequency, interval_ms):
    """Per interval of the run: each kind of thread's CPU, in percent of one core."""
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,time"], capture_output=True, text=True, check=True
    ).stdout
    per = collections.defaultdict(collections.Counter)
    start = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[-1].endswith(":"):
            continue
        try:
            t = float(parts[-1].rstrip(":"))
        except ValueError:
            continue
        comm = " ".join(parts[:-1])
        kind = ("pipeline" if comm.endswith("default-qos") else "read-ahead" if comm.endswith("ahead")
                else "writer" if "writer" in comm else "other")
        if start is None:
            start = t  # perf script prints samples in time order
        per[int((t - start) * 1000 // interval_ms)][kind] += 1
    if not per:
        return
    kinds = ["pipeline", "read-ahead", "writer", "other"]
    full = 100.0 * 1000 / (frequency * interval_ms)  # percent of one core per sample
    print(f"\ntimeline: CPU per {interval_ms} ms, in % of one core (2 cores: 200% at most)")
    print("      ms " + "".join(f"{k:>11}" for k in kinds) + "      total")
    last = max(per)
    busy = 0
    for i in range(last + 1):
        row = [per[i][k] * full for k in kinds]
        if i < last and row[0] >= 90:
            busy += 1
        print(f"{i * interval_ms:8d} " + "".join(f"{v:10.0f}%" for v in row) + f"{sum(row):10.0f}%")
    print(f"the pipeline thread was >= 90% busy in {busy} of the {last} full intervals")

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/release/feedbackd")
    parser.add_argument("--dir", default=".build/bench-corpus", help="the corpus directory (bench.yaml in it)")
    parser.add_argument("--frequency", type=int, default=1500)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--callers", nargs="*", default=[], help="substrings of leaf functions to show the callers of")
    parser.add_argument("--dwarf", action="store_true", help="unwind with DWARF (exact callers of frameless leaves)")
    parser.add_argument("--timeline", type=int, metavar="MS", help="also print each thread kind's CPU per MS ms")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (Debian: apt-get install linux-perf)")
    config = os.path.join(args.dir, "bench.yaml")
    if not os.path.exists(config):
        sys.exit(f"{config} is missing: run `feedbackd-bench corpus --dir {args.dir}` first")
    lock = benchlock.hold(os.path.abspath(args.dir), "thread_profile.py")  # noqa: F841 (held until exit)
    benchlock.set_aside(os.path.abspath(args.dir))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        # DWARF unwinding copies each sample's stack: a lower rate keeps the data small.
        frequency = min(args.frequency, 300) if args.dwarf else args.frequency
        graph = ["--call-graph", "dwarf,16384"] if args.dwarf else ["-g"]
        subprocess.run(
            ["perf", "record", "-q", "-F", str(frequency), *graph, "-o", data,
             os.path.abspath(args.binary), "replay", "--config", config, "--flush"],
            stdout=subprocess.DEVNULL, check=True)
        by_thread = collections.defaultdict(list)
        for thread, frames in samples(data):
            by_thread[thread].append(frames)
        if args.timeline:
            timeline(data, frequency, args.timeline)
    benchlock.clear_set_aside(os.path.abspath(args.dir))
    total = sum(len(v) for v in by_thread.values())
    if total == 0:
        sys.exit("perf recorded no samples")
    # The pipeline runs on a Dispatch worker thread ("…default-qos"); the others name themselves.
    pipeline = max((t for t in by_thread if t.endswith("default-qos")), key=lambda t: len(by_thread[t]), default=None)
    print(f"{total} samples at {frequency} Hz" + (" (DWARF unwinding)" if args.dwarf else ""))
    for thread, stacks in sorted(by_thread.items(), key=lambda kv: -len(kv[1])):
        if len(stacks) < total / 200:
            continue
        label = "pipeline" if thread == pipeline else thread
        print(f"\n{label}: {100 * len(stacks) / total:.1f}% of all samples; self time:")
        top = collections.Counter(frames[0] if frames else "?" for frames in stacks)
        for name, count in top.most_common(args.top):
            print(f"  {100 * count / len(stacks):5.1f}%  {name[:110]}")
        if thread == pipeline:
            phases = collections.Counter()
            for frames in stacks:
                phase = next((name for name, key in PHASES if any(key in f for f in frames)), "other")
                phases[phase] += 1
            print("  phases (inclusive):")
            for name, count in phases.most_common():
                print(f"  {100 * count / len(stacks):5.1f}%  {name}")
        for leaf in args.callers:
            callers = collections.Counter(
                " < ".join(f[:70] for f in frames[1:3]) for frames in stacks if frames and leaf in frames[0])
            if callers:
                print(f"  callers of {leaf} ({sum(callers.values())} samples):")
                for name, count in callers.most_common(5):
                    print(f"  {100 * count / len(stacks):5.1f}%  {name}")


if __name__ == "__main__":
    main()
