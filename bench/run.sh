#!/usr/bin/env bash
# Side-by-side load test on loopback, one run, same machine:
#   1. a fast static upstream (nginx `return 200`), measured three ways:
#      direct, through portcullis (all defaults), through nginx configured to
#      do the same work (headers set, fingerprint hidden, errors intercepted);
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

for tool in wrk nginx node npm; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y wrk nginx nodejs npm)" >&2; exit 1; }
done

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

echo "building portcullis (release)..." >&2
(cd "$ROOT" && cargo build --release -q)
PORTCULLIS="$ROOT/target/release/portcullis"

# --- 1. static upstream -------------------------------------------------------
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

# portcullis with its defaults, except that wrk's single client IP must never
# reach the rate limit (the check still runs on every request, as it would for
# real clients); its JSON log goes to a file as nginx's does.
printf '[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n' > "$WORK/unreachable-limit.toml"
GATEWAY=$(free_port)
"$PORTCULLIS" --upstream "http://127.0.0.1:$UPSTREAM" --listen "127.0.0.1:$GATEWAY" --config "$WORK/unreachable-limit.toml" > "$WORK/portcullis.log" & PIDS+=($!)
GATEWAY_PID=$!
wait_port "$GATEWAY"

# nginx doing the same work: forwarding headers, request id, the helmet headers
# (add_header ... always), fingerprint headers hidden, error pages intercepted,
# the same limits and timeouts, a JSON access log.
NGINX=$(free_port)
nginx_preamble "$WORK/proxy" 2 > "$WORK/proxy.conf"
cat > "$WORK/proxy/neutral.html" <<'EOF'
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head><body><h1>Error</h1></body></html>
EOF
cat >> "$WORK/proxy.conf" <<EOF
http {
  log_format json escape=json '{"ts":"\$time_iso8601","method":"\$request_method","path":"\$uri","status":\$status,"bytes":\$body_bytes_sent,"duration":\$request_time,"client_ip":"\$remote_addr","request_id":"\$request_id"}';
  access_log $WORK/proxy/logs/access.log json;
  server_tokens off;
  client_max_body_size 1m;
  client_header_timeout 10s;
  client_body_timeout 30s;
  keepalive_timeout 75s;
  large_client_header_buffers 4 16k;
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX;
    error_page 404 500 502 503 504 /neutral.html;
    location = /neutral.html { internal; root $WORK/proxy; }
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\"\$host\"";
      proxy_set_header X-Request-Id \$request_id;
      proxy_connect_timeout 5s;
      proxy_read_timeout 60s;
      proxy_intercept_errors on;
      proxy_hide_header X-Powered-By;
      proxy_hide_header Server;
      proxy_hide_header X-AspNet-Version;
      proxy_hide_header X-AspNetMvc-Version;
      proxy_hide_header X-Runtime;
      proxy_hide_header X-Generator;
      add_header X-Request-Id \$request_id always;
      add_header Content-Security-Policy "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests" always;
      add_header Cross-Origin-Opener-Policy same-origin always;
      add_header Cross-Origin-Resource-Policy same-origin always;
      add_header Origin-Agent-Cluster "?1" always;
      add_header Referrer-Policy no-referrer always;
      add_header X-Content-Type-Options nosniff always;
      add_header X-DNS-Prefetch-Control off always;
      add_header X-Download-Options noopen always;
      add_header X-Frame-Options SAMEORIGIN always;
      add_header X-Permitted-Cross-Domain-Policies none always;
      add_header X-XSS-Protection 0 always;
    }
  }
}
EOF
nginx -p "$WORK/proxy" -c "$WORK/proxy.conf" & PIDS+=($!)
NGINX_PID=$!
wait_port "$NGINX"

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

# --- 2. the Express app: behind portcullis vs helmet in-process ---------------
(cd "$ROOT/examples/express-app" && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)
(cd "$ROOT/bench/express-helmet" && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null)
APP=$(free_port)
(cd "$ROOT/examples/express-app" && NODE_ENV=production PORT=$APP exec node app.js >/dev/null) & PIDS+=($!)
HELMET=$(free_port)
(cd "$ROOT/bench/express-helmet" && NODE_ENV=production PORT=$HELMET exec node server.js >/dev/null) & PIDS+=($!)
APP_GATEWAY=$(free_port)
"$PORTCULLIS" --upstream "http://127.0.0.1:$APP" --listen "127.0.0.1:$APP_GATEWAY" --config "$WORK/unreachable-limit.toml" > "$WORK/portcullis-app.log" & PIDS+=($!)
wait_port "$APP"; wait_port "$HELMET"; wait_port "$APP_GATEWAY"

read -r HELMET_RPS HELMET_P99 < <(load express-helmet "http://127.0.0.1:$HELMET/api/products")
read -r APPGW_RPS APPGW_P99 < <(load express-portcullis "http://127.0.0.1:$APP_GATEWAY/api/products")

cat <<EOF
| run | req/s | p99 (ms) | peak RSS (MiB) |
|---|---:|---:|---:|
| static upstream, direct | $DIRECT_RPS | $DIRECT_P99 | |
| static upstream via portcullis | $GW_RPS | $GW_P99 | $GW_RSS |
| static upstream via nginx (same work) | $NGX_RPS | $NGX_P99 | $NGX_RSS |
| Express app + helmet in-process | $HELMET_RPS | $HELMET_P99 | |
| Express app via portcullis | $APPGW_RPS | $APPGW_P99 | |

portcullis / nginx: $(ratio "$GW_RPS" "$NGX_RPS")x req/s, p99 $(ratio "$GW_P99" "$NGX_P99")x
portcullis / direct: $(ratio "$GW_RPS" "$DIRECT_RPS")x req/s
Express via portcullis / Express + helmet: $(ratio "$APPGW_RPS" "$HELMET_RPS")x req/s, p99 $(ratio "$APPGW_P99" "$HELMET_P99")x
($DURATION s per run, $CONNECTIONS connections, wrk -t2, $(nproc) cores)
EOF
