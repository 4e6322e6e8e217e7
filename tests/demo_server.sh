# Sourced by tests/browser/run.sh and tests/http/run_audit.sh: `start_demo_server PORT N`
# serves a fresh demo database of N customers on 127.0.0.1:PORT (in its own data dir,
# removed on exit) and sets `token` to its printed admin token.
start_demo_server() {
  local port="$1" customers="$2"
  work="$(mktemp -d)"
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
  CUSTOMER_GRAPH_DATA_DIR="$work/data" customer-graph serve --demo "$customers" --port "$port" \
    >"$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 120); do
    grep -q '"Authorization": "Bearer' "$work/serve.log" 2>/dev/null && \
      curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 1
  done
  token="$(grep -o 'Bearer cg_[A-Za-z0-9_-]*' "$work/serve.log" | head -1 | cut -d' ' -f2)"
  [ -n "$token" ] || { cat "$work/serve.log"; return 1; }
}
