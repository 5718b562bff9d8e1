#!/usr/bin/env bash
# Process start → GET /ready 200, for the modelhost binary on the embedded default registry.
# Usage: bench/startup.sh [path/to/modelhost] [runs]
# Prints one line per run and the median, in milliseconds. Needs curl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/modelhost}
runs=${2:-10}
port=18123
times=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" serve --port "$port" --host 127.0.0.1 --log-level warn >/dev/null 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "server exited" >&2; exit 1; fi
    sleep 0.002
  done
  end=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "start -> ready: ${ms} ms"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "median: ${sorted[$(( ${#sorted[@]} / 2 ))]} ms over $runs runs"
