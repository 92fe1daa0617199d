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
source "$(dirname "$0")/lib.sh"

need wrk nginx node npm
build_portcullis

# --- 1. static upstream -------------------------------------------------------
start_static_upstream

# portcullis with its defaults, except that wrk's single client IP must never
# reach the rate limit (the check still runs on every request, as it would for
# real clients); its JSON log goes to a file as nginx's does.
UNREACHABLE_LIMIT=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n'
start_portcullis portcullis "$UNREACHABLE_LIMIT"

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
| Express app + helmet in-process | $HELMET_RPS | $HELMET_P99 | |
| Express app via portcullis | $APPGW_RPS | $APPGW_P99 | |

portcullis / nginx: $(ratio "$GW_RPS" "$NGX_RPS")x req/s, p99 $(ratio "$GW_P99" "$NGX_P99")x
portcullis / direct: $(ratio "$GW_RPS" "$DIRECT_RPS")x req/s
Express via portcullis / Express + helmet: $(ratio "$APPGW_RPS" "$HELMET_RPS")x req/s, p99 $(ratio "$APPGW_P99" "$HELMET_P99")x
($DURATION s per run, $CONNECTIONS connections, wrk -t2, $(nproc) cores)
EOF
