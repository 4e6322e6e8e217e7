#!/usr/bin/env bash
# The GraphiQL offline check in headless Chromium (not in the default pytest run: it needs
# Debian's chromium and npm's playwright-core). As root on Debian:
#   apt-get install -y chromium && bash tests/browser/run.sh
# It serves a fresh demo database on 127.0.0.1:8765, refuses every request that leaves
# 127.0.0.1, and writes graphiql-offline.png (override with SCREENSHOT=path).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
port="${PORT:-8765}"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm install --no-save --no-audit --no-fund playwright-core@1 >/dev/null)
fi
. "$here/../demo_server.sh"
start_demo_server "$port" 200
cd "$here"
BASE="http://127.0.0.1:$port" TOKEN="$token" SCREENSHOT="${SCREENSHOT:-$root/graphiql-offline.png}" \
  node graphiql_offline.mjs
