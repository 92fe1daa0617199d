#!/usr/bin/env bash
# Side-by-side load test on loopback, one run, same machine:
#   1. a fast static upstream (nginx `return 200`), measured four ways:
#      direct, through portcullis (all defaults), through nginx configured to
#      do the same work (headers set, fingerprint hidden, errors intercepted),
#      and through hyper alone with no policy (the floor portcullis is built on);
#   2. the example Express app behind portcullis vs the same app with helmet
#      in-process.
# Every load is bounded (wrk -d) and every process started here is stopped by
# its PID on exit. Results: a Markdown table on stdout; raw output in bench/results/.
#
# Usage: bench/run.sh [seconds-per-run] [connections]
# Needs: wrk, nginx, node/npm (apt-get install -y wrk nginx).
set -euo pipefail

DURATION=${1:-15}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx node npm
build_portcullis
build_floor

# --- 1. static upstream -------------------------------------------------------
start_static_upstream

# portcullis with its defaults, except that wrk's single client IP must never
# reach the rate limit (the check still runs on every request, as it would for
# real clients); its JSON log goes to a file as nginx's does.
UNREACHABLE_LIMIT=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n'
start_portcullis portcullis "$UNREACHABLE_LIMIT"

# nginx doing the same work (see nginx_same_work in lib.sh).
NGINX=$(free_port)
nginx_same_work proxy "listen 127.0.0.1:$NGINX;"
wait_port "$NGINX"

# The engine alone, as many workers as portcullis runs (one per core).
FLOOR=$(free_port)
"$FLOOR_BIN" "127.0.0.1:$FLOOR" "127.0.0.1:$UPSTREAM" "$(nproc)" & PIDS+=($!)
FLOOR_PID=$!
wait_port "$FLOOR"

# Both proxies must really do the work before they are timed.
for port in "$GATEWAY" "$NGINX"; do
  headers=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/")
  grep -qi '^x-frame-options: SAMEORIGIN' <<<"$headers" || { echo "bench: port $port misses the security headers" >&2; exit 1; }
done

read -r DIRECT_RPS DIRECT_P99 < <(load direct "http://127.0.0.1:$UPSTREAM/")
read -r GW_RPS GW_P99 < <(load portcullis "http://127.0.0.1:$GATEWAY/")
GW_RSS=$(peak_rss_mib "$GATEWAY_PID")
read -r NGX_RPS NGX_P99 < <(load nginx "http://127.0.0.1:$NGINX/")
NGX_RSS=$(peak_rss_mib "$NGINX_PID")
read -r FLOOR_RPS FLOOR_P99 < <(load floor "http://127.0.0.1:$FLOOR/")
FLOOR_RSS=$(peak_rss_mib "$FLOOR_PID")

# --- 2. the Express app: behind portcullis vs helmet in-process ---------------
(cd "$ROOT/examples/express-app" && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)
(cd "$ROOT/bench/express-helmet" && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)
APP=$(free_port)
(cd "$ROOT/examples/express-app" && NODE_ENV=production PORT=$APP exec node app.js >/dev/null) & PIDS+=($!)
HELMET=$(free_port)
(cd "$ROOT/bench/express-helmet" && NODE_ENV=production PORT=$HELMET exec node server.js >/dev/null) & PIDS+=($!)
APP_GATEWAY=$(free_port)
"$PORTCULLIS" --upstream "http://127.0.0.1:$APP" --listen "127.0.0.1:$APP_GATEWAY" --config "$WORK/portcullis.toml" > "$WORK/portcullis-app.log" & PIDS+=($!)
wait_port "$APP"; wait_port "$HELMET"; wait_port "$APP_GATEWAY"

read -r HELMET_RPS HELMET_P99 < <(load express-helmet "http://127.0.0.1:$HELMET/api/products")
read -r APPGW_RPS APPGW_P99 < <(load express-portcullis "http://127.0.0.1:$APP_GATEWAY/api/products")

cat <<EOF
| run | req/s | p99 (ms) | peak RSS (MiB) |
|---|---:|---:|---:|
| static upstream, direct | $DIRECT_RPS | $DIRECT_P99 | |
| static upstream via portcullis | $GW_RPS | $GW_P99 | $GW_RSS |
| static upstream via nginx (same work) | $NGX_RPS | $NGX_P99 | $NGX_RSS |
| static upstream via hyper alone, no policy (the floor) | $FLOOR_RPS | $FLOOR_P99 | $FLOOR_RSS |
| Express app + helmet in-process | $HELMET_RPS | $HELMET_P99 | |
| Express app via portcullis | $APPGW_RPS | $APPGW_P99 | |

portcullis / nginx: $(ratio "$GW_RPS" "$NGX_RPS")x req/s, p99 $(ratio "$GW_P99" "$NGX_P99")x
portcullis / hyper alone: $(ratio "$GW_RPS" "$FLOOR_RPS")x req/s; hyper alone / nginx: $(ratio "$FLOOR_RPS" "$NGX_RPS")x
portcullis / direct: $(ratio "$GW_RPS" "$DIRECT_RPS")x req/s
Express via portcullis / Express + helmet: $(ratio "$APPGW_RPS" "$HELMET_RPS")x req/s, p99 $(ratio "$APPGW_P99" "$HELMET_P99")x
($DURATION s per run, $CONNECTIONS connections, wrk -t2, $(nproc) cores)
EOF
