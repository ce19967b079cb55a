#!/usr/bin/env bash
# Builds the libFuzzer targets (swiftc -sanitize=fuzzer,address) and runs each for SECONDS
# (default 30) on a copy of the committed seed corpus. Exits non-zero on any crash, leak or
# failed check. Usage: Fuzz/run.sh [SECONDS]
set -euo pipefail
seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-sanitize=fuzzer,address -parse-as-library -O -swift-version 6 -module-name FuzzTarget -suppress-warnings)
# Every C module of the package (its module map's directory), so that a module a Swift source
# starts importing is found here too (9763273 broke this build by importing one more).
for dir in "$root"/Sources/C*; do
  if [ -d "$dir/include" ]; then flags+=(-I "$dir/include"); else flags+=(-I "$dir"); fi
done
swiftc "${flags[@]}" "$root"/Sources/LogFormats/*.swift "$here/FuzzJSON.swift" \
  -o "$work/fuzz-json" 2>&1 \
  | grep -v "ld.gold: warning" || true
# One module: LogTail's `import Gzip` and `import Threads` lines are dropped from copies of its
# sources, which are compiled with Gzip's and Threads'.
mkdir -p "$work/src"
for f in "$root"/Sources/LogTail/*.swift; do
  grep -v -e '^import Gzip$' -e '^import Threads$' "$f" > "$work/src/$(basename "$f")"
done
swiftc "${flags[@]}" -lz -lisal "$root"/Sources/Gzip/*.swift "$root"/Sources/Threads/*.swift \
  "$work"/src/*.swift \
  "$here/FuzzGzip.swift" -o "$work/fuzz-gzip" 2>&1 | grep -v "ld.gold: warning" || true
for target in json gzip; do
  [ -x "$work/fuzz-$target" ] || { echo "fuzz-$target did not build"; exit 1; }
done
for target in json gzip; do
  mkdir -p "$work/corpus-$target"
  cp "$here/corpus/$target"/* "$work/corpus-$target/"
  echo "fuzz-$target: ${seconds}s"
  status=0
  (cd "$work" && "$work/fuzz-$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    "$work/corpus-$target" >"$work/fuzz-$target.log" 2>&1) || status=$?
  grep -E "^stat::number_of_executed_units|ERROR|SUMMARY|Done" "$work/fuzz-$target.log" || true
  # libFuzzer exits non-zero and writes a crash-*/leak-*/timeout-* file next to where it runs
  # when it finds a failure. (Until 4457afd this asked `ls` for all three kinds at once, which
  # fails unless every kind is there: a crash was reported and CI still passed.)
  found=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null || true)
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    echo "fuzz-$target found a failure (exit $status): $found"
    tail -n 60 "$work/fuzz-$target.log"
    exit 1
  fi
done
echo "fuzzing passed"
