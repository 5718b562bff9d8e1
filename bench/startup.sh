#!/usr/bin/env bash
# Process start -> GET /ready 200, for the modelhost binary on the embedded default registry.
# Usage: bench/startup.sh [path/to/modelhost] [runs]
# Prints the runs and the median in milliseconds (JSON). /ready is polled every millisecond by
# bench/harness.py, the same measurement bench/compare.sh makes for both servers. Needs python3.
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$repo/target/release/modelhost}
runs=${2:-10}
port=18123
[[ -x $bin ]] || { echo "startup.sh: no modelhost binary at $bin (cargo build --release)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "startup.sh: python3 is required" >&2; exit 1; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
python3 "$repo/bench/harness.py" startup --port "$port" --runs "$runs" \
  --env "REGISTRY_DIR=$repo/registry" --env HOST=127.0.0.1 --env "PORT=$port" \
  --env "LOG_DIR=$logs" --env LOG_LEVEL=warn --env MODELHOST_SHUTDOWN_DELAY_MS=0 \
  -- "$bin" serve
