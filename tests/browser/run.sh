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
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm install --no-save --no-audit --no-fund playwright-core@1 >/dev/null)
fi
CUSTOMER_GRAPH_DATA_DIR="$work/data" customer-graph serve --demo 200 --port "$port" \
  >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  grep -q '"Authorization": "Bearer' "$work/serve.log" 2>/dev/null && \
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 1
done
token="$(grep -o 'Bearer cg_[A-Za-z0-9_-]*' "$work/serve.log" | head -1 | cut -d' ' -f2)"
[ -n "$token" ] || { cat "$work/serve.log"; exit 1; }
cd "$here"
BASE="http://127.0.0.1:$port" TOKEN="$token" SCREENSHOT="${SCREENSHOT:-$root/graphiql-offline.png}" \
  node graphiql_offline.mjs
