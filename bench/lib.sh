# Helpers shared by the bench scripts: sourced, not run. Expects DURATION and
# CONNECTIONS to be set; starts nothing by itself. Every process a script
# starts goes into PIDS and is stopped by its PID on exit.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# need TOOL...: stops with the install command if one is missing.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y $*)" >&2; exit 1; }
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listening on port $1" >&2
  exit 1
}

# Peak resident memory of a process and its children, in MiB (VmHWM).
peak_rss_mib() {
  local total=0 pid
  for pid in "$@" $(pgrep -P "$1" || true); do
    local kib
    kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  awk -v kib="$total" 'BEGIN { printf "%.1f", kib / 1024 }'
}

# wrk run: prints "requests_per_second p99_ms"
load() {
  local name=$1 url=$2 out="$RESULTS/$1.txt"
  wrk -t2 -c"$CONNECTIONS" -d2s "$url" >/dev/null            # warm-up
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" > "$out"
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  echo "$rps $(to_ms "$p99")"
}

to_ms() {
  awk -v t="$1" 'BEGIN {
    if (t ~ /us$/) printf "%.3f", substr(t, 1, length(t) - 2) / 1000;
    else if (t ~ /ms$/) printf "%.3f", substr(t, 1, length(t) - 2);
    else printf "%.3f", substr(t, 1, length(t) - 1) * 1000;
  }'
}

# The part every nginx instance here shares: foreground, its own pid and error
# log under DIR, WORKERS worker processes.
nginx_preamble() {
  local dir=$1 workers=$2
  mkdir -p "$dir/logs"
  cat <<EOF
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 4096; }
EOF
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }


build_portcullis() {
  echo "building portcullis (release)..." >&2
  (cd "$ROOT" && cargo build --release -q)
  PORTCULLIS="$ROOT/target/release/portcullis"
}

# A fast static upstream on port $UPSTREAM: nginx, one worker, `return 200`
# with a small HTML body.
start_static_upstream() {
  UPSTREAM=$(free_port)
  nginx_preamble "$WORK/upstream" 1 > "$WORK/upstream.conf"
  cat >> "$WORK/upstream.conf" <<EOF
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$UPSTREAM;
    location / { default_type text/html; return 200 "<!doctype html><html><body><h1>Hello from the upstream</h1></body></html>\n"; }
  }
}
EOF
  nginx -p "$WORK/upstream" -c "$WORK/upstream.conf" & PIDS+=($!)
  wait_port "$UPSTREAM"
}

# start_portcullis NAME CONFIG_TEXT: a gateway in front of $UPSTREAM; sets
# GATEWAY (its port) and GATEWAY_PID.
start_portcullis() {
  local name=$1
  printf '%s' "$2" > "$WORK/$name.toml"
  GATEWAY=$(free_port)
  "$PORTCULLIS" --upstream "http://127.0.0.1:$UPSTREAM" --listen "127.0.0.1:$GATEWAY" --config "$WORK/$name.toml" > "$WORK/$name.log" & PIDS+=($!)
  GATEWAY_PID=$!
  wait_port "$GATEWAY"
}
