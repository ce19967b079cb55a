#!/bin/bash
# The md5 of what a replay of the benchmark job writes: the dataset's rows, the reject log and
# the side logs (orphans, late). Two builds that print the same three sums wrote the same bytes.
#
#   bash Benchmarks/outputs_md5.sh [BINARY] [CORPUS_DIR]
#
# BINARY defaults to .build/release/feedbackd, CORPUS_DIR to .build/bench-corpus (made by
# `feedbackd-bench corpus`). Deletes CORPUS_DIR/out and CORPUS_DIR/state first, so it takes the
# corpus's lock (`Benchmarks/benchlock.py`) like the other benchmarks: run alongside one (a
# `callgrind.py replay`, say) it wiped that one's output mid-run, and summed a mix of both.
set -euo pipefail
binary=${1:-.build/release/feedbackd}
corpus=${2:-.build/bench-corpus}
[ -f "$corpus/bench.yaml" ] || { echo "outputs_md5.sh: no $corpus/bench.yaml; run feedbackd-bench corpus first" >&2; exit 2; }
exec 9<>"$corpus/.bench.lock"
if ! flock -n 9; then
  holder=$(head -n 1 "$corpus/.bench.lock" 2>/dev/null || true)
  echo "outputs_md5.sh: $corpus is in use by another benchmark (${holder:-a process that wrote no name}); run one at a time: they share its state/ and out/" >&2
  exit 1
fi
echo "outputs_md5.sh, pid $$" > "$corpus/.bench.lock"
rm -rf "$corpus/out" "$corpus/state"
"$binary" replay --config "$corpus/bench.yaml" --flush >/dev/null
# The files under a directory (those named like $2), concatenated in path order, summed.
sum() {
  if [ -d "$1" ]; then
    (cd "$1" && find . -type f -name "$2" | LC_ALL=C sort | xargs -r cat | md5sum | cut -c1-32)
  else
    echo none
  fi
}
echo "out $(sum "$corpus/out" '*.jsonl*') rejects $(sum "$corpus/state/rejects" '*') side $(sum "$corpus/state/side" '*')"
