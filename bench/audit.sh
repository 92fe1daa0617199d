#!/usr/bin/env bash
# Wall time of a full `portcullis audit` of the example app behind
# portcullis over HTTPS, next to the tools it replaces, on the same target in
# the same run: the MDN HTTP Observatory's scanner (the npm package, headers
# and grade) and sslyze (TLS). Each command runs RUNS times, one after the
# other; the median is reported (results in docs/benchmarks.md).
#
# The Observatory scans ports 80 and 443 only, so the gateway listens on
# 127.0.81.1:443 with its redirect listener on :80: run as root.
#
# Usage: bench/audit.sh [runs]
# Needs: node, the Observatory package (npm ci in
# crates/portcullis/tests/observatory), sslyze (scripts/test-deps.sh puts it
# in ~/.cache/portcullis-test-tools/sslyze).
set -euo pipefail

RUNS=${1:-5}
DURATION=0
CONNECTIONS=0
source "$(dirname "$0")/lib.sh"

ADDRESS=127.0.81.1
OBSERVATORY="$ROOT/crates/portcullis/tests/observatory"
SSLYZE="${HOME:-/root}/.cache/portcullis-test-tools/sslyze/bin/sslyze"
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (ports 80 and 443)" >&2; exit 1; }
[ -x "$SSLYZE" ] || { echo "bench: sslyze is missing (scripts/test-deps.sh)" >&2; exit 1; }
[ -d "$OBSERVATORY/node_modules" ] || (cd "$OBSERVATORY" && npm ci --no-audit --no-fund >/dev/null)
# The preload list the package downloads when installed (not reachable
# here); no loopback address is preloaded.
PRELOAD="$OBSERVATORY/node_modules/@mdn/mdn-http-observatory/conf/hsts-preload.json"
[ -f "$PRELOAD" ] || echo '{}' > "$PRELOAD"
build_portcullis

APP=$(free_port)
(cd "$ROOT/examples/express-app" && exec env PORT="$APP" HOST=127.0.0.1 node app.js) > "$WORK/app.log" 2>&1 & PIDS+=($!)
wait_port "$APP"

"$PORTCULLIS" cert self-signed --host "$ADDRESS" --out "$WORK/cert" >/dev/null
chmod 644 "$WORK/cert/key.pem"   # the gateway drops root
cat > "$WORK/gateway.toml" <<CONF
[rate_limit]
requests = 1000000000
window_secs = 1
burst = 1000000000
[bans]
enabled = false
[tls]
cert = "$WORK/cert/cert.pem"
key = "$WORK/cert/key.pem"
redirect_listen = "$ADDRESS:80"
CONF
"$PORTCULLIS" --upstream "http://127.0.0.1:$APP" --listen "$ADDRESS:443" --config "$WORK/gateway.toml" > "$WORK/gateway.log" & PIDS+=($!)
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/$ADDRESS/443") 2>/dev/null && break
  sleep 0.05
done

CA="$WORK/cert/ca.pem"
ADVISORIES="$ROOT/crates/portcullis-audit/fixtures/advisories"

# median NAME COMMAND...: runs COMMAND $RUNS times (output to the results
# folder), prints the median wall time in seconds.
median() {
  local name=$1; shift
  local times=()
  for run in $(seq 1 "$RUNS"); do
    local start end
    start=$(date +%s.%N)
    "$@" > "$RESULTS/audit-$name-$run.txt" 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

OURS=$(median portcullis "$PORTCULLIS" audit "https://$ADDRESS/" --cacert "$CA" --advisories "$ADVISORIES")
OURS_FAST=$(median portcullis-rate100 "$PORTCULLIS" audit "https://$ADDRESS/" --cacert "$CA" --advisories "$ADVISORIES" --rate 100)
OBS=$(cd "$OBSERVATORY" && median observatory env NODE_EXTRA_CA_CERTS="$CA" node node_modules/@mdn/mdn-http-observatory/src/scan.js "$ADDRESS")
SSL=$(median sslyze "$SSLYZE" --certinfo_ca_file "$CA" "$ADDRESS:443")
BOTH=$(awk -v a="$OBS" -v b="$SSL" 'BEGIN { printf "%.3f", a + b }')

grep -q '"grade": "A+"' "$RESULTS/audit-observatory-1.txt" || echo "bench: the Observatory did not grade A+ (see $RESULTS/audit-observatory-1.txt)" >&2
REQUESTS=$(sed -n 2p "$RESULTS/audit-portcullis-1.txt")

echo "| run ($RUNS each, median wall time) | seconds | portcullis audit is |"
echo "|---|---|---|"
echo "| portcullis audit (--rate 10, the default; $REQUESTS) | $OURS | |"
echo "| portcullis audit --rate 100 | $OURS_FAST | |"
echo "| MDN HTTP Observatory scanner (headers, grade) | $OBS | $(ratio "$OBS" "$OURS")x / $(ratio "$OBS" "$OURS_FAST")x as fast |"
echo "| sslyze (TLS, all default scans) | $SSL | $(ratio "$SSL" "$OURS")x / $(ratio "$SSL" "$OURS_FAST")x as fast |"
echo "| Observatory + sslyze | $BOTH | $(ratio "$BOTH" "$OURS")x / $(ratio "$BOTH" "$OURS_FAST")x as fast |"
