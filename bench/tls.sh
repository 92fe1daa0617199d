#!/usr/bin/env bash
# HTTPS beside nginx, one run, same machine, same ECDSA P-256 certificate
# (results in docs/benchmarks.md):
#   1. new TLS handshakes per second: every request on a new connection
#      (wrk with Connection: close);
#   2. keep-alive HTTPS requests per second over HTTP/1.1 (wrk);
#   3. the same over HTTP/2 (h2load, 10 streams per connection).
# Both proxies do the same work in front of the same static upstream (see
# nginx_same_work in lib.sh). Every load is bounded in time and every process
# started here is stopped by its PID on exit.
#
# Usage: bench/tls.sh [seconds-per-run] [connections]
# Needs: wrk, nginx, h2load (apt-get install -y wrk nginx nghttp2-client).
set -euo pipefail

DURATION=${1:-10}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx h2load
build_portcullis
start_static_upstream

"$PORTCULLIS" cert self-signed --host localhost --out "$WORK/cert" >/dev/null
CERT="$WORK/cert/cert.pem"
KEY="$WORK/cert/key.pem"
chmod 644 "$KEY"   # the gateway drops root when started as root

UNREACHABLE=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n[bans]\nenabled = false\n'
start_portcullis tls "$UNREACHABLE"$'[tls]\ncert = "'"$CERT"$'"\nkey = "'"$KEY"$'"\nredirect_listen = "off"\n'
NGINX=$(free_port)
nginx_same_work tls-nginx "listen 127.0.0.1:$NGINX ssl http2; ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:TLS:10m;"
wait_port "$NGINX"

# h2 run: prints "requests_per_second"
h2() {
  local name=$1 url=$2 out="$RESULTS/$1.txt"
  h2load -c"$CONNECTIONS" -m10 -t2 -D 2 "$url" >/dev/null                  # warm-up
  h2load -c"$CONNECTIONS" -m10 -t2 -D "$DURATION" "$url" > "$out"
  awk '/^finished in/ {print $4}' "$out"
}

# handshakes NAME URL: new connections (one TLS handshake each) per second.
handshakes() {
  local out="$RESULTS/$1.txt"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Connection: close" "$2" > "$out"
  awk '/^Requests\/sec:/ {print $2}' "$out"
}

GW="https://localhost:$GATEWAY/"
NG="https://localhost:$NGINX/"
curl -sk -o /dev/null "$GW" && curl -sk -o /dev/null "$NG"
GW_HS=$(handshakes tls-handshakes-portcullis "$GW")
NG_HS=$(handshakes tls-handshakes-nginx "$NG")
read -r GW_H1 GW_H1_P99 < <(load tls-h1-portcullis "$GW")
read -r NG_H1 NG_H1_P99 < <(load tls-h1-nginx "$NG")
GW_H2=$(h2 tls-h2-portcullis "$GW")
NG_H2=$(h2 tls-h2-nginx "$NG")

cat <<EOF
| run | portcullis | nginx | ratio |
|---|---:|---:|---:|
| new TLS handshakes/s (HTTP/1.1, Connection: close) | $GW_HS | $NG_HS | $(ratio "$GW_HS" "$NG_HS")x |
| keep-alive HTTPS req/s, HTTP/1.1 | $GW_H1 | $NG_H1 | $(ratio "$GW_H1" "$NG_H1")x |
| keep-alive HTTPS p99 (ms), HTTP/1.1 | $GW_H1_P99 | $NG_H1_P99 | $(ratio "$GW_H1_P99" "$NG_H1_P99")x |
| keep-alive HTTPS req/s, HTTP/2 (10 streams per connection) | $GW_H2 | $NG_H2 | $(ratio "$GW_H2" "$NG_H2")x |
($DURATION s per run, $CONNECTIONS connections, 2 client threads, $(nproc) cores, ECDSA P-256)
EOF
