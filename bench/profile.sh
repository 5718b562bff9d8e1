#!/usr/bin/env bash
# Profiles modelhost's `POST /predict` under wrk with perf: the release server pinned to the
# upper half of the CPUs and wrk to the lower half (as bench/compare.sh pins them), `perf record
# -g` of the server process during the measured run, then the self time of every sampled symbol
# grouped by component (bench/profile_groups.py) as a Markdown table.
#
# Usage: bench/profile.sh [--seconds S] [--modelhost PATH] [--out DIR] [--path ROUTE]
#   --seconds S        seconds of load while recording (default 10, after 2 s of warm-up)
#   --modelhost PATH   the release binary (default: target/release/modelhost, built if missing)
#   --path ROUTE       /predict (default) or /v2/models/churn/infer
#   --out DIR          where perf.data and the report go (default bench/results/profile-<UTC>)
# Needs: perf (Debian: apt-get install linux-perf), wrk, taskset, python3, curl.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bench=$repo/bench
seconds=10
modelhost_bin=""
route=/predict
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --modelhost) modelhost_bin=$2; shift 2 ;;
    --path) route=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done
for tool in perf wrk taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "profile.sh: $tool is required" >&2; exit 1; }
done
if [[ -z $modelhost_bin ]]; then
  modelhost_bin=${CARGO_TARGET_DIR:-$repo/target}/release/modelhost
  [[ -x $modelhost_bin ]] || (cd "$repo" && cargo build --release -p modelhost)
fi
ncpu=$(nproc)
(( ncpu >= 2 )) || { echo "profile.sh: needs at least 2 CPUs" >&2; exit 1; }
half=$(( ncpu / 2 ))
client_cpus=0-$(( half - 1 ))
server_cpus=$half-$(( ncpu - 1 ))
workers=$(( ncpu - half ))
lua=$bench/predict.lua
[[ $route == /predict ]] || lua=$bench/infer.lua

out=${out:-$bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out/logs"
port=18311
REGISTRY_DIR=$repo/registry MODEL_NAME=churn HOST=127.0.0.1 PORT=$port LOG_DIR=$out/logs \
  LOG_LEVEL=warn MONITORING_TOKEN=bench-token MODELHOST_SHUTDOWN_DELAY_MS=0 \
  TOKIO_WORKER_THREADS=$workers taskset -c "$server_cpus" "$modelhost_bin" serve \
  > "$out/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 5000); do
  curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 0.002
done
curl -fs "http://127.0.0.1:$port/ready" >/dev/null || { echo "profile.sh: server not ready" >&2; exit 1; }

url=http://127.0.0.1:$port$route
taskset -c "$client_cpus" wrk -t1 -c32 -d2s -s "$lua" "$url" > /dev/null
taskset -c "$client_cpus" wrk -t1 -c32 -d"$(( seconds + 2 ))"s -s "$lua" "$url" > "$out/wrk.txt" &
wrk_pid=$!
sleep 1
perf record -g -F 4999 -p "$server" -o "$out/perf.data" -- sleep "$seconds" 2> "$out/perf-record.log"
wait $wrk_pid
perf report -i "$out/perf.data" --no-children --sort sym --stdio --percent-limit 0 -g none \
  2> /dev/null > "$out/perf-report.txt"
{
  echo "modelhost $route, $(grep -m1 'Requests/sec' "$out/wrk.txt"), $seconds s recorded"
  echo
  python3 "$bench/profile_groups.py" "$out/perf-report.txt"
} | tee "$out/profile.md"
echo "results: $out" >&2
