#!/usr/bin/env bash
# Checks Config/feedbackd.service: `systemd-analyze verify` clean and an exposure level of
# 2.0 or lower from `systemd-analyze security --offline=true`. ExecStart is pointed at the
# built binary (argument 1) so verify can check it exists.
set -euo pipefail
binary=${1:?usage: check_systemd_unit.sh PATH_TO_FEEDBACKD}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/feedbackd|$binary|" "$here/Config/feedbackd.service" > "$work/feedbackd.service"
verify=$(systemd-analyze verify "$work/feedbackd.service" 2>&1 || true)
if [ -n "$verify" ]; then
  echo "systemd-analyze verify: $verify"
  exit 1
fi
level=$(systemd-analyze security --offline=true "$work/feedbackd.service" 2>&1 | sed -n 's/.*Overall exposure level for feedbackd.service: \([0-9.]*\).*/\1/p')
echo "exposure level: $level"
awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }'
