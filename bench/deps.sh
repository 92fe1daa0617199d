#!/usr/bin/env bash
# Wall time and peak memory of `portcullis audit PATH` on OWASP NodeGoat's
# lockfile (1,479 installed packages) with the fixture advisories, beside
# the same answer computed by node with npm's own semver
# (crates/portcullis/tests/semver/affected.js, which the tests compare the
# audit with), in the same run. `npm audit` cannot run here: it posts the
# lockfile to the registry's advisory service, which this machine's
# registry access refuses (405), and it has no offline mode.
# RUNS runs each, one after the other; the median time and the largest
# peak resident memory are reported (results in docs/benchmarks.md).
#
# Usage: bench/deps.sh [runs]
set -euo pipefail

RUNS=${1:-10}
DURATION=0
CONNECTIONS=0
source "$(dirname "$0")/lib.sh"
build_portcullis

PROJECT="$ROOT/crates/portcullis-audit/fixtures/projects/nodegoat"
ADVISORIES="$ROOT/crates/portcullis-audit/fixtures/advisories"
JUDGE="$ROOT/crates/portcullis/tests/semver"
[ -d "$JUDGE/node_modules" ] || (cd "$JUDGE" && npm ci --no-audit --no-fund >/dev/null)

# measure NAME COMMAND...: prints "median_ms peak_rss_mib" over $RUNS runs.
measure() {
  local name=$1; shift
  local times=() peak=0
  for run in $(seq 1 "$RUNS"); do
    local out="$WORK/$name-$run"
    local start end kib
    start=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$out.time" "$@" > "$out.txt" 2>/dev/null || true
    end=$(date +%s%N)
    kib=$(tail -1 "$out.time")
    times+=("$(( (end - start) / 1000000 ))")
    [ "$kib" -gt "$peak" ] && peak=$kib
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
  echo "$median $(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')"
}

read -r OURS OURS_MIB < <(measure portcullis "$PORTCULLIS" audit "$PROJECT" --advisories "$ADVISORIES" --format json)
read -r NODE NODE_MIB < <(cd "$JUDGE" && measure node node affected.js "$PROJECT/package-lock.json" "$ADVISORIES")

echo "| run ($RUNS each) | median wall time | peak memory |"
echo "|---|---|---|"
echo "| portcullis audit (NodeGoat, 1,479 packages, every finding and path) | $OURS ms | $OURS_MIB MiB |"
echo "| node + npm semver, matching only (no paths, no report) | $NODE ms | $NODE_MIB MiB |"
