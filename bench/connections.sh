#!/usr/bin/env bash
# Memory per idle connection, keep-alive HTTP/1.1, HTTP/2 and WebSocket,
# portcullis beside nginx doing the same work: each holds COUNT connections
# (from many loopback source addresses, 25 each, one request answered on
# each, or one WebSocket opened, by bench/idle-clients.mjs), and the growth
# of its resident memory over its base, divided by COUNT, is the cost of one.
# Both proxy the same static nginx upstream, and the example app for the
# WebSockets. Every process started here is stopped by its PID on exit; the
# clients hold for at most 120 s.
#
# Usage: bench/connections.sh [count] [modes]   (default 10000 "h1 h2 ws"; the fd limit bounds the count)
# Needs: nginx, node, python3.
set -euo pipefail

COUNT=${1:-10000}
MODES=${2:-h1 h2 ws}
DURATION=0 CONNECTIONS=0
source "$(dirname "$0")/lib.sh"

need nginx node python3
ulimit -n "$(ulimit -Hn)"
build_portcullis
start_static_upstream
STATIC=$UPSTREAM
APP=$(free_port)
(cd "$ROOT/examples/express-app" && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)
(cd "$ROOT/examples/express-app" && NODE_ENV=production PORT=$APP HOST=127.0.0.1 exec node app.js >/dev/null) & PIDS+=($!)
wait_port "$APP"

rss_kib() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}

# measure NAME MODE PORT PID...: prints "base_kib held_kib per_connection_kib"
measure() {
  local name=$1 mode=$2 port=$3; shift 3
  # Warm up: the first requests allocate what every later one reuses.
  node "$ROOT/bench/idle-clients.mjs" "$mode" "$port" 200 1 < /dev/null > /dev/null
  local base held fifo="$WORK/$name-$mode.fifo"
  base=$(rss_kib "$@")
  mkfifo "$fifo"
  node "$ROOT/bench/idle-clients.mjs" "$mode" "$port" "$HELD" 120 < "$fifo" > "$WORK/$name.clients" &
  local clients=$!
  exec 7> "$fifo"
  until grep -q ready "$WORK/$name.clients" 2>/dev/null; do
    kill -0 "$clients" 2>/dev/null || { echo "bench: the clients failed against $name" >&2; exit 1; }
    sleep 0.2
  done
  sleep 1 # let the server finish with the last answers
  held=$(rss_kib "$@")
  exec 7>&-
  wait "$clients" || true
  echo "$base $held $(awk -v b="$base" -v h="$held" -v n="$HELD" 'BEGIN { printf "%.1f", (h - b) / n }')"
}

# nginx_idle NAME LISTEN: nginx doing the same work, with room for COUNT
# connections (twice that for tunnels, which hold one upstream each), and
# WebSockets passed on at /ws.
nginx_idle() {
  nginx_same_work "$1" "$2"
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
  sed -i 's/worker_connections 4096;/worker_connections 60000;/' "$WORK/$1.conf"
  sed -i 's|^    location / {|    location /ws { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_read_timeout 600s; }\n    location / {|' "$WORK/$1.conf"
  nginx -p "$WORK/$1" -c "$WORK/$1.conf" & PIDS+=($!); NGINX_PID=$!
}

LIMITS=$'[server]\nmax_connections = 100000\n[rate_limit]\nallow = ["127.0.0.0/8"]\n'
# A tunnel holds two descriptors (client and upstream) in the proxy.
TUNNELS=$(( ($(ulimit -n) - 1000) / 2 ))
echo "| idle | connections | base RSS, MiB | holding them, MiB | per connection, KiB |"
echo "|---|---:|---:|---:|---:|"
for mode in $MODES; do
  [ "$mode" = ws ] && UPSTREAM=$APP || UPSTREAM=$STATIC
  HELD=$COUNT
  [ "$mode" = ws ] && [ "$TUNNELS" -lt "$COUNT" ] && HELD=$TUNNELS
  start_portcullis "idle-$mode" "$LIMITS"
  read -r base held per < <(measure portcullis "$mode" "$GATEWAY" "$GATEWAY_PID")
  echo "| $mode, portcullis | $HELD | $((base / 1024)) | $((held / 1024)) | $per |"
  kill "$GATEWAY_PID"
  port=$(free_port)
  [ "$mode" = h2 ] && http2=" http2" || http2=""
  nginx_idle "nginx-$mode" "listen 127.0.0.1:$port$http2;"
  wait_port "$port"
  sleep 0.5
  read -r base held per < <(measure nginx "$mode" "$port" "$NGINX_PID" $(pgrep -P "$NGINX_PID"))
  echo "| $mode, nginx 1.22 (master and 2 workers, same work) | $HELD | $((base / 1024)) | $((held / 1024)) | $per |"
  kill "$NGINX_PID"
done
