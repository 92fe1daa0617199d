#!/usr/bin/env bash
# The cost of [metrics]: the same gateway (every default layer, one named
# route) with the metrics listener on and off, in front of a static nginx
# upstream, so the gateway's own work is what is measured. The on side is
# scraped once before and after, to show the requests were counted. Every
# load is bounded (wrk -d); every process started here is stopped by its PID
# on exit. Results: a Markdown table on stdout.
#
# Usage: bench/metrics.sh [seconds-per-run] [connections]
# Needs: wrk, nginx, curl.
set -euo pipefail

DURATION=${1:-10}
CONNECTIONS=${2:-64}
source "$(dirname "$0")/lib.sh"

need wrk nginx curl
build_portcullis
start_static_upstream

BASE=$'[rate_limit]\nallow = ["127.0.0.0/8"]\n[[route]]\nname = "api"\npath = "/api"\n'
METRICS_PORT=$(free_port)
start_portcullis off "$BASE"; OFF=$GATEWAY
start_portcullis on "$BASE"$'[metrics]\nlisten = "127.0.0.1:'"$METRICS_PORT"$'"\n'; ON=$GATEWAY
wait_port "$METRICS_PORT"

read -r OFF_RPS OFF_P99 ON_RPS ON_P99 < <(pair metrics-off "http://127.0.0.1:$OFF/" metrics-on "http://127.0.0.1:$ON/" load)
counted=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
  awk '/^portcullis_http_requests_total\{route="default",method="GET",status_class="2xx"\}/ {print $2}')
[ "${counted:-0}" -gt 0 ] || { echo "bench: the requests were not counted" >&2; exit 1; }

echo "| run (medians of 3 alternating runs of $DURATION s, $CONNECTIONS connections) | requests/s | p99 ms | ratio |"
echo "|---|---|---|---|"
echo "| metrics off | $OFF_RPS | $OFF_P99 | 1.00 |"
echo "| metrics on ($counted requests counted) | $ON_RPS | $ON_P99 | $(ratio "$ON_RPS" "$OFF_RPS") |"
