#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing:
# Node.js, Debian's chromium (headless browser tests), redis-server (the
# shared store), pebble (an ACME server) and openssl (a TLS client) through
# apt-get, and
# the npm packages of the example app and of the browser scenarios.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pebble >/dev/null || missing+=(pebble)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

for dir in examples/express-app crates/portcullis/tests/browser; do
  [ -d "$dir/node_modules" ] || (cd "$dir" && npm ci --no-audit --no-fund)
done

cargo test --workspace
