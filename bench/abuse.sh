#!/usr/bin/env bash
# Abuse protection, one run, same machine (results in docs/benchmarks.md):
#   1. throughput through portcullis with rate limiting off, on (limit never
#      reached) with the memory store, and on with the Redis store; nginx
#      without and with limit_req beside it for the cost of the same check;
#   2. accuracy: a limit of 1,000 requests hammered by 64 connections, on one
#      gateway (memory store) and on two gateways sharing one redis-server;
#   3. memory for 1,000,000 tracked client IPs (the store_memory example);
#   4. a Redis outage: throughput while redis-server is down, with the
#      default fail mode and with on_error = "local", beside the memory store.
# Every load is bounded (wrk -d) and every process started here is stopped by
# its PID on exit.
#
# Usage: bench/abuse.sh [seconds-per-run] [connections]
# Needs: wrk, nginx, redis-server, curl (apt-get install -y wrk nginx redis-server curl).
set -euo pipefail

DURATION=${1:-10}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx redis-server curl
build_portcullis
start_static_upstream

REDIS=$(free_port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & PIDS+=($!)
wait_port "$REDIS"

# --- 1. throughput ------------------------------------------------------------
UNREACHABLE=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n'
start_portcullis rl-off $'[rate_limit]\nenabled = false\n'
read -r OFF_RPS OFF_P99 < <(load rl-off "http://127.0.0.1:$GATEWAY/")
start_portcullis rl-memory "$UNREACHABLE"
read -r MEM_RPS MEM_P99 < <(load rl-memory "http://127.0.0.1:$GATEWAY/")
start_portcullis rl-redis "$UNREACHABLE"$'[store]\nredis = "redis://127.0.0.1:'"$REDIS"$'"\n'
read -r REDIS_RPS REDIS_P99 < <(load rl-redis "http://127.0.0.1:$GATEWAY/")
redis_requests=$(redis-cli -p "$REDIS" info stats | awk -F: '/^total_commands_processed/ {print $2+0}')

# nginx as a plain proxy, then with a limit_req zone it never reaches.
start_nginx_proxy() {
  local name=$1 zone=$2 limit=$3
  NGINX=$(free_port)
  nginx_preamble "$WORK/$name" 2 > "$WORK/$name.conf"
  cat >> "$WORK/$name.conf" <<EOF
http {
  access_log off;
  $zone
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX;
    location / { $limit proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  nginx -p "$WORK/$name" -c "$WORK/$name.conf" & PIDS+=($!)
  wait_port "$NGINX"
}
start_nginx_proxy nginx-off "" ""
read -r NGX_OFF_RPS NGX_OFF_P99 < <(load nginx-off "http://127.0.0.1:$NGINX/")
start_nginx_proxy nginx-limit "limit_req_zone \$binary_remote_addr zone=perip:64m rate=1000000r/s;" "limit_req zone=perip burst=1000000 nodelay;"
read -r NGX_ON_RPS NGX_ON_P99 < <(load nginx-limit "http://127.0.0.1:$NGINX/")

# --- 2. accuracy --------------------------------------------------------------
# 1,000 requests a year with a burst of 1,000: nothing is replenished during
# the run, so exactly 1,000 may pass. Bans are off so refusals stay 429s.
EXACT=$'[rate_limit]\nrequests = 1000\nwindow_secs = 31536000\nburst = 1000\n[bans]\nenabled = false\n'

# allowed URL CONNECTIONS: requests answered 2xx during a short hammering.
allowed() {
  local out
  out=$(wrk -t2 -c"$2" -d3s "$1")
  local total non2xx
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo $((total - ${non2xx:-0}))
}
start_portcullis exact-memory "$EXACT"
MEM_ALLOWED=$(allowed "http://127.0.0.1:$GATEWAY/" 64)
redis-cli -p "$REDIS" flushall >/dev/null
SHARED="$EXACT"$'[store]\nredis = "redis://127.0.0.1:'"$REDIS"$'"\n'
start_portcullis exact-redis-a "$SHARED"; FIRST=$GATEWAY
start_portcullis exact-redis-b "$SHARED"; SECOND=$GATEWAY
allowed "http://127.0.0.1:$FIRST/" 32 > "$WORK/first" & first=$!
allowed "http://127.0.0.1:$SECOND/" 32 > "$WORK/second" & second=$!
wait "$first" "$second"
REDIS_ALLOWED=$(( $(cat "$WORK/first") + $(cat "$WORK/second") ))

# --- 3. memory for a million clients -------------------------------------------
MILLION=$(cd "$ROOT" && cargo run --release -q -p portcullis-core --example store_memory)

# --- 4. a Redis outage ------------------------------------------------------------
# A gateway on its own redis-server, which is then killed: once the outage
# event is logged, requests must cost what they cost with the memory store.
# Run in this shell, not a subshell, so the processes it starts are stopped
# on exit; its result goes to $WORK/NAME.result.
during_outage() {
  local name=$1 mode=$2 port pid
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & pid=$!
  PIDS+=($pid)
  wait_port "$port"
  start_portcullis "$name" "$UNREACHABLE"$'[store]\nredis = "redis://127.0.0.1:'"$port"$'"\non_error = "'"$mode"$'"\n'
  kill "$pid"
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$GATEWAY/" || true
    grep -q '"action":"outage"' "$WORK/$name.log" && break
    sleep 0.05
  done
  grep -q '"action":"outage"' "$WORK/$name.log" || { echo "bench: no outage event for $name" >&2; exit 1; }
  load "$name" "http://127.0.0.1:$GATEWAY/" > "$WORK/$name.result"
}
during_outage outage-fail-open fail_open
read -r DOWN_OPEN_RPS DOWN_OPEN_P99 < "$WORK/outage-fail-open.result"
during_outage outage-local local
read -r DOWN_LOCAL_RPS DOWN_LOCAL_P99 < "$WORK/outage-local.result"

cat <<EOF
| run | req/s | p99 (ms) |
|---|---:|---:|
| portcullis, rate limiting off | $OFF_RPS | $OFF_P99 |
| portcullis, rate limiting on (memory store) | $MEM_RPS | $MEM_P99 |
| portcullis, rate limiting on (Redis store) | $REDIS_RPS | $REDIS_P99 |
| portcullis, Redis store, Redis down (fail_open) | $DOWN_OPEN_RPS | $DOWN_OPEN_P99 |
| portcullis, Redis store, Redis down (local) | $DOWN_LOCAL_RPS | $DOWN_LOCAL_P99 |
| nginx proxy | $NGX_OFF_RPS | $NGX_OFF_P99 |
| nginx proxy + limit_req | $NGX_ON_RPS | $NGX_ON_P99 |

rate limiting on / off (memory): $(ratio "$MEM_RPS" "$OFF_RPS")x req/s (nginx limit_req on / off: $(ratio "$NGX_ON_RPS" "$NGX_OFF_RPS")x)
Redis store / memory store: $(ratio "$REDIS_RPS" "$MEM_RPS")x req/s (Redis commands processed: $redis_requests)
Redis down / memory store: fail_open $(ratio "$DOWN_OPEN_RPS" "$MEM_RPS")x, local $(ratio "$DOWN_LOCAL_RPS" "$MEM_RPS")x req/s
accuracy, limit 1000, 64 connections: memory store let $MEM_ALLOWED through; two gateways on one Redis let $REDIS_ALLOWED through
memory: $MILLION
($DURATION s per run, $CONNECTIONS connections, wrk -t2, $(nproc) cores)
EOF
