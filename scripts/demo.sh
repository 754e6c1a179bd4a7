#!/usr/bin/env bash
# Starts the demo: two backends on 127.0.0.1:8081 and :8082, then Capuchin
# on :2001 with conf/. Ctrl-C (or SIGTERM) stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

./bin/demo-backend -listen 127.0.0.1:8081 -name backend-1 & pids+=($!)
./bin/demo-backend -listen 127.0.0.1:8082 -name backend-2 & pids+=($!)

cat <<MSG

  Capuchin demo on http://127.0.0.1:2001/
    curl -i http://127.0.0.1:2001/            static page (conf/www)
    curl http://127.0.0.1:2001/api/           proxied, round-robin over two backends
    curl http://127.0.0.1:2001/proxy_stats    the proxy's status page
  Ctrl-C stops it.

MSG
./bin/capuchin -c conf & pids+=($!)
wait "${pids[2]}"
