#!/usr/bin/env bash
# Wall time of the code audit beside the tools teams run instead, on the
# same trees in one run: ESLint 9 with eslint-plugin-security's recommended
# rules, njsscan (PyPI, semgrep underneath), and oxlint (its default rules:
# raw parse-and-lint speed). For portcullis, `portcullis audit TREE` on a
# copy of the tree without its lockfiles (the other tools read none) and
# with no advisories: the code audit and little else.
#
# Usage: bench/code.sh [runs] [TREE...]
# Without trees: the example app, and a copy of its node_modules (90
# packages, a few thousand files) as a large tree of real code.
# Needs: npm ci in bench/code-tools; njsscan and semgrep in
# ~/.cache/portcullis-bench-njsscan (python3 -m venv, then pip install
# njsscan semgrep).
set -euo pipefail

RUNS=${1:-3}
shift || true
DURATION=0
CONNECTIONS=0
source "$(dirname "$0")/lib.sh"
TOOLS="$ROOT/bench/code-tools"
NJSSCAN="${HOME:-/root}/.cache/portcullis-bench-njsscan/bin"
[ -d "$TOOLS/node_modules" ] || (cd "$TOOLS" && npm ci --no-audit --no-fund >/dev/null)
[ -x "$NJSSCAN/njsscan" ] || { echo "bench: njsscan is missing (see the header)" >&2; exit 1; }
build_portcullis

TREES=("$@")
if [ ${#TREES[@]} -eq 0 ]; then
  APP="$ROOT/examples/express-app"
  [ -d "$APP/node_modules" ] || (cd "$APP" && npm ci --no-audit --no-fund >/dev/null)
  mkdir -p "$WORK/packages"
  cp -r "$APP/node_modules/." "$WORK/packages/"
  TREES=("$APP" "$WORK/packages")
fi

# median COMMAND...: the median wall time in ms over $RUNS runs (run in the tree).
median() {
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    local start end
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1 || true
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

echo "| tree | files | portcullis | ESLint + security | njsscan | oxlint |"
echo "|---|---|---|---|---|---|"
for tree in "${TREES[@]}"; do
  files=$(find "$tree" -path '*/node_modules/*' -prune -o \( -name '*.js' -o -name '*.mjs' -o -name '*.cjs' -o -name '*.ts' \) -print | wc -l)
  own="$WORK/own-$(basename "$tree")"
  cp -r "$tree" "$own"
  rm -f "$own"/package-lock.json "$own"/npm-shrinkwrap.json "$own"/yarn.lock "$own"/pnpm-lock.yaml
  ours=$(cd "$own" && median "$PORTCULLIS" audit . --format json)
  eslint=$(cd "$tree" && median "$TOOLS/node_modules/.bin/eslint" --config "$TOOLS/eslint.config.mjs" .)
  njsscan=$(cd "$tree" && median env PATH="$NJSSCAN:$PATH" "$NJSSCAN/njsscan" --json -o "$WORK/njsscan.json" .)
  oxlint=$(cd "$tree" && median "$TOOLS/node_modules/.bin/oxlint" .)
  echo "| $(basename "$tree") | $files | $ours ms | $eslint ms ($(ratio "$eslint" "$ours")x) | $njsscan ms ($(ratio "$njsscan" "$ours")x) | $oxlint ms ($(ratio "$oxlint" "$ours")x) |"
done
