#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing
# (scripts/test-deps.sh), and the npm packages of the example app and of the
# browser scenarios (sslyze goes into its own virtualenv, see scripts/test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")"

scripts/test-deps.sh
for dir in examples/express-app crates/portcullis/tests/browser; do
  [ -d "$dir/node_modules" ] || (cd "$dir" && npm ci --no-audit --no-fund)
done

cargo test --workspace
