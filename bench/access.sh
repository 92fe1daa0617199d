#!/usr/bin/env bash
# The cost of access rules and of the response filter, on loopback, in one run:
#   1. requests through an [[access]] rule that needs a login, with a
#      logged-in session cookie, vs the same gateway without the rule;
#   2. a 100 KiB JSON answer (user records with password hashes) through the
#      filter vs with the filter off.
# The upstream is nginx (static answers), so the gateway's work is what is
# measured. Every load is bounded (wrk -d); every process started here is
# stopped by its PID on exit. Results: a Markdown table on stdout.
#
# Usage: bench/access.sh [seconds-per-run] [connections]
# Needs: wrk, nginx, python3.
set -euo pipefail

DURATION=${1:-10}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx python3
build_portcullis

# A 100 KiB JSON document of user records, each with a password hash.
python3 - "$WORK/users.json" <<'PY'
import json, sys
rows, size, i = [], 0, 0
while size < 100 * 1024:
    i += 1
    row = {"id": i, "name": f"user{i}", "email": f"user{i}@example.com",
           "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}
    rows.append(row)
    size += len(json.dumps(row)) + 1
open(sys.argv[1], "w").write(json.dumps(rows))
PY
UPSTREAM=$(free_port)
nginx_preamble "$WORK/upstream" 1 > "$WORK/upstream.conf"
cat >> "$WORK/upstream.conf" <<NGINX
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$UPSTREAM;
    location = /users.json { default_type application/json; alias $WORK/users.json; }
    location / { default_type text/html; return 200 "<!doctype html><html><body><h1>Admin</h1></body></html>\n"; }
  }
}
NGINX
nginx -p "$WORK/upstream" -c "$WORK/upstream.conf" & PIDS+=($!)
wait_port "$UPSTREAM"

LIMIT=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n'
printf 'a bench password of some length\n' | "$PORTCULLIS" user add bench --password-stdin --users "$WORK/users.toml" >/dev/null
RULE=$'[portal]\nusers = "'"$WORK"$'/users.toml"\nsecond_factor = "optional"\n[[access]]\npath = "/admin"\nlogin = true\n'

start_portcullis plain "$LIMIT"; PLAIN=$GATEWAY
start_portcullis ruled "$LIMIT$RULE"; RULED=$GATEWAY
start_portcullis filter-off "$LIMIT"$'[filter]\nmode = "off"\n'; FILTER_OFF=$GATEWAY

# Log in once; every request then presents the session.
jar="$WORK/jar"
curl -s -c "$jar" -o /dev/null "http://127.0.0.1:$RULED/.portcullis/login"
csrf=$(awk '$6 == "portcullis-session-csrf" {print $7}' "$jar")
curl -s -b "$jar" -c "$jar" -o /dev/null -H "origin: http://127.0.0.1:$RULED" \
  --data "csrf=$csrf&username=bench&password=a+bench+password+of+some+length" "http://127.0.0.1:$RULED/.portcullis/login"
session=$(awk '$6 == "portcullis-session" {print $7}' "$jar")
[ -n "$session" ] || { echo "bench: the login failed" >&2; exit 1; }
COOKIE="portcullis-session=$session"
curl -s -H "cookie: $COOKIE" "http://127.0.0.1:$RULED/admin" | grep -q Admin || { echo "bench: the session does not pass the rule" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RULED/admin")" = 401 ] || { echo "bench: the rule does not apply" >&2; exit 1; }
curl -s "http://127.0.0.1:$PLAIN/users.json" | grep -q passwordHash && { echo "bench: the filter does not run" >&2; exit 1; }

load_with_cookie() {
  local name=$1 url=$2 out="$RESULTS/$1.txt"
  wrk -t2 -c"$CONNECTIONS" -d2s -H "cookie: $COOKIE" "$url" >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "cookie: $COOKIE" "$url" > "$out"
  echo "$(awk '/^Requests\/sec:/ {print $2}' "$out") $(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
}

read -r PLAIN_RPS PLAIN_P99 RULED_RPS RULED_P99 < <(pair access-none "http://127.0.0.1:$PLAIN/admin" access-rule "http://127.0.0.1:$RULED/admin" load_with_cookie)
read -r OFF_RPS OFF_P99 ON_RPS ON_P99 < <(pair filter-off "http://127.0.0.1:$FILTER_OFF/users.json" filter-on "http://127.0.0.1:$PLAIN/users.json" load)

echo "| run (medians of 3 alternating runs of $DURATION s, $CONNECTIONS connections) | requests/s | p99 ms | ratio |"
echo "|---|---|---|---|"
echo "| /admin, no access rule | $PLAIN_RPS | $PLAIN_P99 | 1.00 |"
echo "| /admin, [[access]] login = true, logged-in session | $RULED_RPS | $RULED_P99 | $(ratio "$RULED_RPS" "$PLAIN_RPS") |"
echo "| 100 KiB JSON, filter off | $OFF_RPS | $OFF_P99 | 1.00 |"
echo "| 100 KiB JSON, filter on (removes every passwordHash) | $ON_RPS | $ON_P99 | $(ratio "$ON_RPS" "$OFF_RPS") |"
