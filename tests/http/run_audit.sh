#!/usr/bin/env bash
# The graphql-over-http audit suite (npm graphql-http's auditServer) against a fresh demo
# service on 127.0.0.1:8766. Not in the default pytest run (it needs Node.js and npm):
#   bash tests/http/run_audit.sh
# Prints every audit that is not "ok" and the counts per level (MUST / SHOULD / MAY).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${PORT:-8766}"
if [ ! -d "$here/node_modules/graphql-http" ]; then
  (cd "$here" && npm install --no-save --no-audit --no-fund graphql-http@1 graphql@16 >/dev/null)
fi
. "$here/../demo_server.sh"
start_demo_server "$port" 50
cd "$here"
echo "signed in:"; URL="http://127.0.0.1:$port/graphql" TOKEN="$token" node graphql_http_audit.mjs
echo "anonymous:"; URL="http://127.0.0.1:$port/graphql" node graphql_http_audit.mjs
