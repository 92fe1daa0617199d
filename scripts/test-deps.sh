#!/usr/bin/env bash
# Installs, through apt-get, what the test suite needs and this machine lacks:
# Node.js, Debian's chromium (headless browser tests), redis-server (the
# shared store), pebble (an ACME server) and openssl (a TLS client). Only
# what is missing: a machine's own Node.js must not be replaced by Debian's
# packages (they conflict). nginx is the misconfigured TLS server the audit
# must catch; systemd-analyze scores the service unit; wrk is the load a
# config reload must not disturb. Not root and
# something missing: says what to run.
# Then sslyze (a TLS scanner) from PyPI, into a virtualenv of its own where
# the gateway tests look for it.
set -euo pipefail

sslyze_venv="${HOME:-/root}/.cache/portcullis-test-tools/sslyze"
if [ ! -x "$sslyze_venv/bin/sslyze" ]; then
  python3 -m venv "$sslyze_venv"
  "$sslyze_venv/bin/pip" install --quiet --disable-pip-version-check 'sslyze==6.3.1'
fi

missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pebble >/dev/null || missing+=(pebble)
command -v openssl >/dev/null || missing+=(openssl)
command -v nginx >/dev/null || missing+=(nginx)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v wrk >/dev/null || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
