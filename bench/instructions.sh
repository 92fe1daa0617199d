#!/usr/bin/env bash
# Instructions per proxied request, portcullis beside nginx doing the same
# work, counted by callgrind: repeatable whatever else the machine does,
# unlike requests per second on a shared machine. Each runs one worker in
# front of the same static nginx upstream; after a warm-up of 2,000 requests
# the counters are zeroed, h2load sends REQUESTS more over 4 keep-alive
# HTTP/1.1 connections, and the count is divided by REQUESTS (user-space
# instructions of the proxy only; its shutdown is included and small).
# A third row counts the floor: hyper's HTTP/1.1 server and client on one
# tokio thread with no policy at all (examples/hyper_floor.rs), the engine
# portcullis is built on.
# Every process started here is stopped by its PID on exit.
#
# Usage: bench/instructions.sh [requests]   (default 20000)
# Needs: valgrind, h2load (apt-get install -y valgrind nghttp2-client), nginx.
set -euo pipefail

REQUESTS=${1:-20000}
DURATION=0 CONNECTIONS=0
source "$(dirname "$0")/lib.sh"

need valgrind callgrind_control callgrind_annotate h2load nginx
build_portcullis
build_floor
start_static_upstream
# The gateway drops root to nobody, who must be able to write the counts.
chmod 755 "$WORK"
mkdir -m 777 "$WORK/cg"

# count NAME PORT PID AS_USER: warm up, zero, load, stop; prints instructions per request.
count() {
  local name=$1 port=$2 pid=$3 user=$4
  wait_port "$port" 1200 # valgrind starts slowly
  # Under runuser, valgrind is its child.
  local counted
  counted=$(pgrep -P "$pid" || echo "$pid")
  h2load --h1 -n 2000 -c 4 -t 1 "http://127.0.0.1:$port/" > /dev/null
  runuser -u "$user" -- callgrind_control -z "$counted" > /dev/null
  h2load --h1 -n "$REQUESTS" -c 4 -t 1 "http://127.0.0.1:$port/" > "$WORK/$name.h2load"
  grep -q "0 failed, 0 errored" "$WORK/$name.h2load" || { cat "$WORK/$name.h2load" >&2; exit 1; }
  kill -INT "$counted"
  # Not this subshell's child: wait for it to go, then for its counts.
  while kill -0 "$counted" 2>/dev/null; do sleep 0.2; done
  local total
  total=$(callgrind_annotate "$WORK/cg/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  awk -v t="$total" -v n="$REQUESTS" 'BEGIN { printf "%.0f", t / n }'
}

GATEWAY=$(free_port)
printf '[server]\nworkers = 1\n[rate_limit]\nallow = ["127.0.0.0/8"]\n' > "$WORK/one-worker.toml"
chmod 644 "$WORK/one-worker.toml"
runuser -u nobody -- valgrind --tool=callgrind --callgrind-out-file="$WORK/cg/portcullis.out" \
  "$PORTCULLIS" --upstream "http://127.0.0.1:$UPSTREAM" --listen "127.0.0.1:$GATEWAY" \
  --config "$WORK/one-worker.toml" > "$WORK/portcullis.log" 2>&1 & PIDS+=($!)
OURS=$(count portcullis "$GATEWAY" $! nobody)

NGINX=$(free_port)
nginx_same_work proxy "listen 127.0.0.1:$NGINX;"
wait_port "$NGINX"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg/nginx.out" \
  nginx -p "$WORK/proxy" -c "$WORK/proxy.conf" -g "master_process off;" > "$WORK/nginx.log" 2>&1 & PIDS+=($!)
THEIRS=$(count nginx "$NGINX" $! root)

FLOOR=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg/floor.out" \
  "$FLOOR_BIN" "127.0.0.1:$FLOOR" "127.0.0.1:$UPSTREAM" > "$WORK/floor.log" 2>&1 & PIDS+=($!)
FLOOR_COUNT=$(count floor "$FLOOR" $! root)

echo "| one worker, $REQUESTS keep-alive requests (h2load --h1 -c 4) | instructions per request |"
echo "|---|---:|"
echo "| portcullis, every default layer | $OURS |"
echo "| nginx $(nginx -v 2>&1 | sed 's|.*/||'), same work | $THEIRS |"
echo "| hyper + tokio alone, no policy (the floor) | $FLOOR_COUNT |"
echo "portcullis / nginx: $(ratio "$OURS" "$THEIRS")x instructions"
echo "hyper floor / nginx: $(ratio "$FLOOR_COUNT" "$THEIRS")x instructions"
