# Helpers shared by the bench scripts: sourced, not run. Expects DURATION and
# CONNECTIONS to be set; starts nothing by itself. Every process a script
# starts goes into PIDS and is stopped by its PID on exit.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
PIDS=()

cleanup() {
  # Only the script itself: a subshell (a process substitution, say) that
  # ends must not stop the servers or remove the work directory.
  [ "$BASHPID" = "$$" ] || return 0
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
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

# wait_port PORT [TRIES]: up to TRIES checks 50 ms apart (default 200).
wait_port() {
  for _ in $(seq 1 "${2:-200}"); do
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


# PORTCULLIS_BIN=path measures that binary instead (an earlier build, say).
build_portcullis() {
  if [ -n "${PORTCULLIS_BIN:-}" ]; then PORTCULLIS=$PORTCULLIS_BIN; return; fi
  echo "building portcullis (release)..." >&2
  (cd "$ROOT" && cargo build --release -q)
  PORTCULLIS="$ROOT/target/release/portcullis"
}

# The engine alone, no policy (crates/portcullis/examples/hyper_floor.rs):
# sets FLOOR_BIN.
build_floor() {
  echo "building the hyper floor (release example)..." >&2
  (cd "$ROOT" && cargo build --release -q --example hyper_floor)
  FLOOR_BIN="$ROOT/target/release/examples/hyper_floor"
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

# nginx_same_work NAME LISTEN: nginx in front of $UPSTREAM doing the same
# work as portcullis: forwarding headers, request id, the helmet headers
# (add_header ... always), fingerprint headers hidden, error pages
# intercepted, the same limits and timeouts, a JSON access log. LISTEN is the
# server's listen directives (plain, or with ssl and its certificate). Sets
# NGINX_PID.
nginx_same_work() {
  local name=$1 listen=$2 dir="$WORK/$1"
  nginx_preamble "$dir" 2 > "$dir.conf"
  cat > "$dir/neutral.html" <<'EOF'
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head><body><h1>Error</h1></body></html>
EOF
  cat >> "$dir.conf" <<EOF
http {
  log_format json escape=json '{"ts":"\$time_iso8601","method":"\$request_method","path":"\$uri","status":\$status,"bytes":\$body_bytes_sent,"duration":\$request_time,"client_ip":"\$remote_addr","request_id":"\$request_id"}';
  access_log $dir/logs/access.log json;
  server_tokens off;
  client_max_body_size 1m;
  client_header_timeout 10s;
  client_body_timeout 30s;
  keepalive_timeout 75s;
  keepalive_requests 100000;
  large_client_header_buffers 4 16k;
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    $listen
    error_page 404 500 502 503 504 /neutral.html;
    location = /neutral.html { internal; root $dir; }
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
  nginx -p "$dir" -c "$dir.conf" & PIDS+=($!)
  NGINX_PID=$!
}

# pair A_NAME A_URL B_NAME B_URL LOADER: each side loaded three times,
# alternating, and the medians printed ("a_rps a_p99 b_rps b_p99"): on a
# shared machine two back-to-back runs can differ by more than the cost measured.
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
pair() {
  local a_name=$1 a_url=$2 b_name=$3 b_url=$4 loader=$5 a_rps=() a_p99=() b_rps=() b_p99=() rps p99
  for round in 1 2 3; do
    read -r rps p99 < <($loader "$a_name-$round" "$a_url"); a_rps+=("$rps"); a_p99+=("$p99")
    read -r rps p99 < <($loader "$b_name-$round" "$b_url"); b_rps+=("$rps"); b_p99+=("$p99")
  done
  echo "$(median "${a_rps[@]}") $(median "${a_p99[@]}") $(median "${b_rps[@]}") $(median "${b_p99[@]}")"
}
