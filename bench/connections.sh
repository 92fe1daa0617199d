#!/usr/bin/env bash
# Memory per idle keep-alive HTTP/1.1 connection, portcullis beside nginx
# doing the same work: each holds COUNT connections (from many loopback
# source addresses, 25 each, one request answered on each), and the growth
# of its resident memory over its base, divided by COUNT, is the cost of
# one. Both proxy the same static nginx upstream. Every process started here
# is stopped by its PID on exit; the clients hold for at most 120 s.
#
# Usage: bench/connections.sh [count]     (default 10000; the fd limit bounds it)
# Needs: nginx, python3.
set -euo pipefail

COUNT=${1:-10000}
DURATION=0 CONNECTIONS=0
source "$(dirname "$0")/lib.sh"

need nginx python3
ulimit -n "$(ulimit -Hn)"
build_portcullis
start_static_upstream

rss_kib() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}

# measure NAME PORT PID...: prints "base_kib held_kib per_connection_kib"
measure() {
  local name=$1 port=$2; shift 2
  # Warm up: the first requests allocate what every later one reuses.
  python3 "$ROOT/bench/idle-clients.py" "$port" 200 25 5 < /dev/null > /dev/null
  local base held fifo="$WORK/$name.fifo"
  base=$(rss_kib "$@")
  mkfifo "$fifo"
  python3 "$ROOT/bench/idle-clients.py" "$port" "$COUNT" 25 120 < "$fifo" > "$WORK/$name.clients" &
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
  echo "$base $held $(awk -v b="$base" -v h="$held" -v n="$COUNT" 'BEGIN { printf "%.1f", (h - b) / n }')"
}

LIMITS=$'[server]\nmax_connections = 100000\n[rate_limit]\nallow = ["127.0.0.0/8"]\n'
start_portcullis idle "$LIMITS"
read -r P_BASE P_HELD P_PER < <(measure portcullis "$GATEWAY" "$GATEWAY_PID")

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
nginx_same_work nginx "listen 127.0.0.1:$NGINX_PORT;"
sed -i 's/worker_connections 4096;/worker_connections 30000;/' "$WORK/nginx.conf"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" & PIDS+=($!); NGINX_PID=$!
wait_port "$NGINX_PORT"
sleep 0.5
read -r N_BASE N_HELD N_PER < <(measure nginx "$NGINX_PORT" "$NGINX_PID" $(pgrep -P "$NGINX_PID"))

echo "| $COUNT idle keep-alive HTTP/1.1 connections | base RSS, MiB | holding them, MiB | per connection, KiB |"
echo "|---|---:|---:|---:|"
echo "| portcullis | $((P_BASE / 1024)) | $((P_HELD / 1024)) | $P_PER |"
echo "| nginx (master and 2 workers, same work) | $((N_BASE / 1024)) | $((N_HELD / 1024)) | $N_PER |"
