#!/usr/bin/env bash
# The WAF side by side with nginx + ModSecurity v3 + OWASP CRS (paranoia level
# 1, anomaly threshold 5), in one run on loopback, both in front of the same
# fast static upstream:
#   1. throughput with the WAF on and off, for both, on a benign GET with a
#      200-byte query and on a 2 KiB urlencoded form POST (wrk, bounded);
#   2. detection and false-positive rates of both WAFs on bench/waf/payloads
#      and bench/waf/benign, every value sent as `?q=` (bench/waf-rates.py).
# Every process started here is stopped by its PID on exit. Results: Markdown
# on stdout; raw wrk output in bench/results/.
#
# Usage: bench/waf.sh [seconds-per-run] [connections]
# Needs: wrk nginx libnginx-mod-http-modsecurity modsecurity-crs python3.
set -euo pipefail

DURATION=${1:-10}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx python3
MODULE=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
CRS=/usr/share/modsecurity-crs/rules
[ -f "$MODULE" ] && [ -d "$CRS" ] || {
  echo "bench: ModSecurity is missing (apt-get install -y libnginx-mod-http-modsecurity modsecurity-crs)" >&2
  exit 1
}
build_portcullis
start_static_upstream

# --- the four gateways -----------------------------------------------------------
UNREACHABLE_LIMIT=$'[rate_limit]\nrequests = 1000000000\nwindow_secs = 1\nburst = 1000000000\n'
start_portcullis waf-on "$UNREACHABLE_LIMIT"
WAF_ON=$GATEWAY
start_portcullis waf-off "$UNREACHABLE_LIMIT"$'[waf]\nmode = "off"\n'
WAF_OFF=$GATEWAY

# ModSecurity's own settings, the CRS setup, then every CRS rule file by name
# (libmodsecurity3 rejects IncludeOptional).
MODSEC="$WORK/modsec"
mkdir -p "$MODSEC"
cat > "$MODSEC/modsecurity.conf" <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 65536
SecRequestBodyLimitAction ProcessPartial
SecRequestBodyJsonDepthLimit 32
SecResponseBodyAccess Off
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
SecArgumentSeparator &
SecCookieFormat 0
SecAuditEngine Off
SecDebugLogLevel 0
SecRule REQUEST_HEADERS:Content-Type "@rx (?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
Include /etc/modsecurity/crs/crs-setup.conf
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
CONF
for rules in "$CRS"/REQUEST-*.conf "$CRS"/RESPONSE-*.conf; do echo "Include $rules" >> "$MODSEC/modsecurity.conf"; done
echo "Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf" >> "$MODSEC/modsecurity.conf"

# nginx_modsec NAME on|off: nginx proxying the upstream, with ModSecurity on or
# off (the module loaded either way). Sets its port in NGINX_PORT.
nginx_modsec() {
  local name=$1 state=$2 dir="$WORK/$1"
  NGINX_PORT=$(free_port)
  { echo "load_module $MODULE;"; nginx_preamble "$dir" 2; } > "$dir.conf"
  cat >> "$dir.conf" <<CONF
http {
  access_log off;
  keepalive_requests 100000;
  client_max_body_size 1m;
  modsecurity $state;
  modsecurity_rules_file $MODSEC/modsecurity.conf;
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  nginx -p "$dir" -c "$dir.conf" & PIDS+=($!)
  wait_port "$NGINX_PORT"
}
nginx_modsec modsec-on on
MODSEC_ON=$NGINX_PORT
nginx_modsec modsec-off off
MODSEC_OFF=$NGINX_PORT

# Both WAFs must really block before anything is timed.
for port in "$WAF_ON" "$MODSEC_ON"; do
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/?q=1%27%20OR%20%271%27%3D%271")
  [ "$status" = 403 ] || { echo "bench: the WAF on port $port answered $status to an injection" >&2; exit 1; }
done

# --- 1. throughput -----------------------------------------------------------------
QUERY='/search?q=blue+running+shoes+for+women&size=38&color=navy&brand=acme&sort=price_asc&page=2&per_page=24&utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale&ref=homepage_banner&session=4f2a9c'
FORM="$WORK/form.lua"
python3 - "$FORM" <<'PY'
import sys
text = ("I ordered the blue running shoes last week and they arrived quickly. "
        "The fit is true to size, the cushioning is great for long runs, and the "
        "colour matches the photos. I would buy them again and recommend them to friends. ")
message = (text * 12)[:1900]
body = "name=Ada+Lovelace&email=ada%40example.com&subject=Order+question&message=" + message.replace(" ", "+").replace(",", "%2C")
body = body[:2048]
with open(sys.argv[1], "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    f.write("wrk.body = %r\n" % body)
PY
loads() {
  local name=$1 port=$2
  read -r "${name}_GET" _ < <(load "waf-$name-get" "http://127.0.0.1:$port$QUERY")
  local out="$RESULTS/waf-$name-post.txt"
  wrk -t2 -c"$CONNECTIONS" -d2s -s "$FORM" "http://127.0.0.1:$port/contact" >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$FORM" "http://127.0.0.1:$port/contact" > "$out"
  printf -v "${name}_POST" '%s' "$(awk '/^Requests\/sec:/ {print $2}' "$out")"
}
loads portcullis_on "$WAF_ON"
loads portcullis_off "$WAF_OFF"
loads modsec_on "$MODSEC_ON"
loads modsec_off "$MODSEC_OFF"

# --- 2. detection and false positives ---------------------------------------------
RATES="$WORK/rates.md"
python3 "$ROOT/bench/waf-rates.py" "$WAF_ON" "$MODSEC_ON" "$ROOT"/bench/waf/payloads/*.txt "$ROOT"/bench/waf/benign/*.txt > "$RATES"

cat <<EOF
| run | GET 200-byte query (req/s) | POST 2 KiB form (req/s) |
|---|---:|---:|
| portcullis, WAF on | $portcullis_on_GET | $portcullis_on_POST |
| portcullis, WAF off | $portcullis_off_GET | $portcullis_off_POST |
| nginx + ModSecurity + CRS PL1 | $modsec_on_GET | $modsec_on_POST |
| nginx, ModSecurity off | $modsec_off_GET | $modsec_off_POST |

portcullis WAF on / off: GET $(ratio "$portcullis_on_GET" "$portcullis_off_GET")x, POST $(ratio "$portcullis_on_POST" "$portcullis_off_POST")x
portcullis WAF on / ModSecurity on: GET $(ratio "$portcullis_on_GET" "$modsec_on_GET")x, POST $(ratio "$portcullis_on_POST" "$modsec_on_POST")x
ModSecurity on / off: GET $(ratio "$modsec_on_GET" "$modsec_off_GET")x, POST $(ratio "$modsec_on_POST" "$modsec_off_POST")x
($DURATION s per run, $CONNECTIONS connections, wrk -t2, $(nproc) cores)

$(cat "$RATES")
EOF
