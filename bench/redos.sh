#!/usr/bin/env bash
# The ReDoS check beside the npm packages teams use for it, on the same
# patterns in one run: every regular expression with a literal pattern in
# the example app's node_modules and in the Observatory test's (the set the
# agreement test reads). portcullis checks them with `portcullis regex
# check --from`; recheck 4.5.0 (its native checker, the fastest it has)
# and safe-regex 2.1.1 run in node from crates/portcullis/tests/redos.
# Prints wall time (median of RUNS), peak memory, and what each found.
#
# Usage: bench/redos.sh [runs]
set -euo pipefail

RUNS=${1:-3}
DURATION=0
CONNECTIONS=0
source "$(dirname "$0")/lib.sh"
TOOLS="$ROOT/crates/portcullis/tests/redos"
APP="$ROOT/examples/express-app"
OBSERVATORY="$ROOT/crates/portcullis/tests/observatory"
for dir in "$TOOLS" "$APP" "$OBSERVATORY"; do
  [ -d "$dir/node_modules" ] || (cd "$dir" && npm ci --no-audit --no-fund >/dev/null)
done
build_portcullis

CORPUS="$WORK/patterns.jsonl"
{ "$PORTCULLIS" regex list "$APP" --include-deps; "$PORTCULLIS" regex list "$OBSERVATORY" --include-deps; } \
  | python3 -c '
import json, sys
seen = {}
for line in sys.stdin:
    v = json.loads(line)
    seen.setdefault((v["source"], v["flags"]), None)
for source, flags in sorted(seen):
    print(json.dumps({"source": source, "flags": flags}))
' > "$CORPUS"

# run NAME COMMAND...: the median wall time (ms) and the peak memory (MiB)
# of COMMAND reading the corpus; its last output kept in $WORK/NAME.jsonl.
run() {
  local name=$1 times=() peak
  shift
  for _ in $(seq 1 "$RUNS"); do
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$WORK/$name.rss" "$@" < "$CORPUS" > "$WORK/$name.jsonl"
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000000 ))")
  done
  peak=$(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/$name.rss")
  echo "$(printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }') $peak"
}

read -r ours ours_mib < <(run portcullis "$PORTCULLIS" regex check --from /dev/stdin)
read -r recheck recheck_mib < <(cd "$TOOLS" && run recheck node compare.mjs recheck)
read -r safe safe_mib < <(cd "$TOOLS" && run safe-regex node compare.mjs safe-regex)

echo "$(wc -l < "$CORPUS") patterns"
echo
echo "| tool | wall time | peak memory |"
echo "|---|---|---|"
echo "| portcullis regex check | $ours ms | $ours_mib MiB |"
echo "| recheck (native) | $recheck ms ($(ratio "$recheck" "$ours")x) | $recheck_mib MiB |"
echo "| safe-regex | $safe ms ($(ratio "$safe" "$ours")x) | $safe_mib MiB |"
echo
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
load = lambda name: [json.loads(l) for l in open(f"{work}/{name}.jsonl")]
ours, recheck, safe = load("portcullis"), load("recheck"), load("safe-regex")
def tally(verdicts):
    v = [x for x in verdicts if x == "vulnerable"]
    return len(v)
print("| | portcullis | recheck | safe-regex |")
print("|---|---|---|---|")
mine = [o["status"] for o in ours]
theirs = [r["recheck"]["status"] for r in recheck]
unsafe = ["vulnerable" if s["safeRegex"] is False else "safe" for s in safe]
print(f"| called vulnerable | {tally(mine)} | {tally(theirs)} | {tally(unsafe)} |")
exp_m = sum(o.get("complexity") == "exponential" for o in ours)
exp_r = sum(r["recheck"]["complexity"] == "exponential" for r in recheck)
print(f"| of which exponential | {exp_m} | {exp_r} | (no degree) |")
print(f"| not analysed | {sum(s in ('unknown', 'invalid') for s in mine)} | {sum(s == 'unknown' for s in theirs)} | {sum(s['safeRegex'] is None for s in safe)} |")
agree = sum(m == t for m, t in zip(mine, theirs))
agree_safe = sum(m == u for m, u in zip(mine, unsafe))
print(f"| same verdict as portcullis | - | {agree} ({100 * agree / len(mine):.1f}%) | {agree_safe} ({100 * agree_safe / len(mine):.1f}%) |")
PY
