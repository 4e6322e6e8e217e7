#!/usr/bin/env bash
# The graphql-over-http audit suite (npm graphql-http's auditServer) against a fresh demo
# service on 127.0.0.1:8766. Not in the default pytest run (it needs Node.js and npm):
#   bash tests/http/run_audit.sh
# Prints every audit that is not "ok" and the counts per level (MUST / SHOULD / MAY).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${PORT:-8766}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ ! -d "$here/node_modules/graphql-http" ]; then
  (cd "$here" && npm install --no-save --no-audit --no-fund graphql-http@1 graphql@16 >/dev/null)
fi
CUSTOMER_GRAPH_DATA_DIR="$work/data" customer-graph serve --demo 50 --port "$port" \
  >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  grep -q '"Authorization": "Bearer' "$work/serve.log" 2>/dev/null && \
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 1
done
token="$(grep -o 'Bearer cg_[A-Za-z0-9_-]*' "$work/serve.log" | head -1 | cut -d' ' -f2)"
cd "$here"
echo "signed in:"; URL="http://127.0.0.1:$port/graphql" TOKEN="$token" node graphql_http_audit.mjs
echo "anonymous:"; URL="http://127.0.0.1:$port/graphql" node graphql_http_audit.mjs
