#!/usr/bin/env python3
"""Instructions per line of a replay and of its two big per-line jobs, counted by callgrind.

    python3 Benchmarks/callgrind.py [engine|replay] [--bench .build/release/feedbackd-bench]
        [--dir .build/bench-corpus] [--top 25] [--out callgrind.out]

`engine` (the default) runs `feedbackd-bench engine --repeat 1` under valgrind's callgrind
(about a minute) and reports, from the inclusive instruction counts (Ir) of its three
measurements, how many instructions per line (a) the scan, (b) the labeling engine and (c) the
engine with short windows execute.

`replay` runs the benchmark job's whole replay (`feedbackd-bench replay`: `Replay.run` with
--flush, in process, every thread) under callgrind (about three minutes) and reports its
instructions per line in all and by part: the read-ahead threads (inflating, scanning), the
pipeline thread (the labeling engine and what it does, commits) and the dataset writer. On
these 2-core machines a replay keeps both cores busy, so its wall time follows all threads'
work together: this total is the figure to watch.

Both then list the functions with the most instructions of their own. Wall-clock figures on
this machine move by 20% from hour to hour; instruction counts repeat run after run (0.1%:
key tables are seeded at random), so two builds compare here even when their times do not.
Instructions are not time: a cache miss costs none (the engine executes a third of a replay's
instructions but takes about half its CPU time), so confirm a gain with `feedbackd-bench
engine` or `run` side by side.

Valgrind 3.19 (Debian 12) cannot read the DWARF 5 debug information Swift 6 emits: it stops
at once ("unhandled dwarf2 abbrev form code 0x25"). So the benchmark binary and the Swift
runtime libraries it loads are copied, stripped of debug information (`strip --strip-debug`;
symbols stay), and run from the copy. `feedbackd` itself still cannot be run under this
valgrind: it dies when its async `main` hands the main thread to libdispatch, whatever the
tool (a valgrind bug); `feedbackd-bench` is synchronous.

Needs valgrind (Debian: valgrind), the corpus from `feedbackd-bench corpus`, and
`swift demangle` (the toolchain) for readable names.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# (key, label, a substring of the demangled function whose inclusive cost it is)
ENGINE_PARTS = [
    ("scan", "scan", "Engine.measuredScan("),
    ("engine", "engine", "Engine.measuredEngine("),
    ("engine_short_window", "engine, short windows", "Engine.measuredShortWindowEngine("),
]
REPLAY_PARTS = [
    ("read_ahead", "read-ahead threads", "ReadAhead.produce()"),
    ("inflate", "  inflating (ISA-L)", "isal_inflate"),
    ("scan", "  scanning lines (and what is done ahead)", "ScannedLines.append(_:digest:)"),
    ("match_ahead", "    matching lines to rules", "RuleTables.eventClass("),
    ("pipeline", "pipeline thread", "Replay.run(config:options:logger:)"),
    ("engine", "  labeling engine, per event", "LabelEngine.process(_:matched:keyHash:source:lineHash:)"),
    ("predictions", "    predictions", "LabelEngine.processPrediction"),
    ("feedback", "    feedback", "LabelEngine.processFeedback"),
    ("due_rows", "    due rows (also at the flush)", "LabelEngine.emitDueRows"),
    ("expiring", "    expiring finished keys", "MemoryStateStore.pruneFinished(expiredBy:)"),
    ("row_handoff", "    rows handed to the writer", "Pipeline.write(parts:)"),
    ("commits", "  commits", "Pipeline.commit("),
    ("writer", "dataset writer thread", "BackgroundWriter.work()"),
]


def stripped_copy(bench, work):
    """Copies the binary and its Swift runtime libraries into `work`, without debug info."""
    lib = os.path.join(work, "lib")
    os.makedirs(lib)
    binary = os.path.join(work, os.path.basename(bench))
    shutil.copy2(bench, binary)
    subprocess.run(["strip", "--strip-debug", binary], check=True)
    ldd = subprocess.run(["ldd", bench], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        parts = line.split("=>")
        if len(parts) != 2:
            continue
        path = parts[1].split("(")[0].strip()
        # The toolchain's runtime (libswiftCore, Foundation, dispatch...), not the system's.
        if "/lib/swift/" in path and os.path.isfile(path):
            target = os.path.join(lib, os.path.basename(path))
            shutil.copy2(path, target)
            subprocess.run(["strip", "--strip-debug", target], check=True)
    return binary, lib


def demangle(names):
    """Swift-demangles `names` (others pass through), in order."""
    swift = shutil.which("swift")
    if not swift or not names:
        return names
    out = subprocess.run(
        [swift, "demangle", "--simplified", "--compact"],
        input="\n".join(names) + "\n",
        capture_output=True,
        text=True,
    )
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < len(names):
        return names
    return lines[: len(names)]


LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(?:\S*?:)?(\S.*?)\s+\[(.*)\]\s*$")


def costs(out_file, inclusive):
    """[(Ir, function)] from callgrind_annotate, most first."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"), "--threshold=100", out_file],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    names = demangle([name for _, name in rows])
    return [(ir, name) for (ir, _), name in zip(rows, names)]


def newer_sources(bench, roots=("Sources", "Benchmarks/Sources")):
    """Swift and C sources under `roots` (relative to this checkout) changed after `bench` was
    built: the counts would be of other code than the checkout's."""
    built = os.path.getmtime(bench)
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    newer = []
    for root in roots:
        for folder, _, files in os.walk(os.path.join(checkout, root)):
            for name in files:
                path = os.path.join(folder, name)
                if name.endswith((".swift", ".c", ".h")) and os.path.getmtime(path) > built:
                    newer.append(os.path.relpath(path, checkout))
    return sorted(newer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=["engine", "replay"], default="engine")
    parser.add_argument("--bench", default=".build/release/feedbackd-bench")
    parser.add_argument("--dir", default=".build/bench-corpus")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="keep callgrind's output file here (for callgrind_annotate or kcachegrind)")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_annotate", "strip", "ldd"):
        if not shutil.which(tool):
            sys.exit(f"callgrind.py: {tool} not found (Debian: apt-get install valgrind binutils)")
    bench = os.path.abspath(args.bench)
    if not os.path.isfile(bench):
        sys.exit(f"callgrind.py: {bench} not found (swift build -c release --product feedbackd-bench)")
    # Which code is counted: a binary built before the checkout's last change (or at another
    # commit, the change undone since) counts other code, and nothing in its output says so.
    stale = newer_sources(bench)
    if stale:
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        sys.stderr.write(
            f"callgrind.py: warning: {shown} changed after {args.bench} was built: "
            "rebuild it (swift build -c release --product feedbackd-bench) to count this checkout's code\n")

    with tempfile.TemporaryDirectory(prefix="callgrind-") as work:
        binary, lib = stripped_copy(bench, work)
        out_file = os.path.abspath(args.out) if args.out else os.path.join(work, "callgrind.out")
        env = dict(os.environ, LD_LIBRARY_PATH=lib, SWIFT_DETERMINISTIC_HASHING="1")
        command = ["engine", "--repeat", "1"] if args.mode == "engine" else ["replay"]
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", binary]
            + command
            + ["--dir", os.path.abspath(args.dir)],
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode != 0:
            sys.stderr.write(run.stderr[-4000:])
            sys.exit(f"callgrind.py: the run under callgrind failed (exit {run.returncode})")
        if args.mode == "engine":
            bench_json = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
            lines, mb = bench_json["lines"], bench_json["mb"]
        else:
            # The replay's summary: "lines       4350326 (1000.4 MB decompressed)".
            words = [line.split() for line in run.stdout.splitlines() if line.startswith("lines ")][0]
            lines, mb = int(words[1]), float(words[2].lstrip("("))
        inclusive = costs(out_file, inclusive=True)
        exclusive = costs(out_file, inclusive=False)

    total = sum(ir for ir, _ in exclusive)
    result = {"mode": args.mode, "lines": lines, "total_ir": total, "total_ir_per_line": round(total / lines)}
    print(f"{lines} lines ({mb} MB), {total:,} instructions in the whole run, {total / lines:.0f} per line\n")
    print(f"{'':38}{'instructions':>16}{'per line':>10}{'share':>8}")
    for key, label, part in ENGINE_PARTS if args.mode == "engine" else REPLAY_PARTS:
        found = [ir for ir, name in inclusive if part in name]
        if not found:
            sys.exit(f"callgrind.py: no cost for {part} (was the benchmark built in release?)")
        ir = max(found)
        result[key + "_ir"] = ir
        result[key + "_ir_per_line"] = round(ir / lines)
        print(f"{label:38}{ir:>16,}{ir / lines:>10.0f}{100 * ir / total:>7.1f}%")
    print("\nfunctions with the most instructions of their own over the whole run (in percent, and per")
    print("line of the input):")
    for ir, name in exclusive[: args.top]:
        print(f"{100 * ir / total:6.2f}%  {ir / lines:7.1f}  {name[:150]}")
    print()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
