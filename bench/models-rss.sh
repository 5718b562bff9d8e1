#!/usr/bin/env bash
# Memory per served model: starts `modelhost serve` with MODEL_NAMES=* on a temp registry of N
# copies of the committed churn model (each folder its own model: its own compiled module, slot,
# watcher and drift window), waits until all N serve, answers one prediction per model, and
# prints the server's VmRSS and VmHWM for each N.
#
# Usage: bench/models-rss.sh [--modelhost PATH] [N ...]      (default N: 1 10 100)
# Default binary: target/release/modelhost if present, else target/debug/modelhost (build one
# first; the script does not build). Needs curl and python3.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
binary=""
counts=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --modelhost) binary=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) counts+=("$1"); shift ;;
    esac
done
[[ ${#counts[@]} -gt 0 ]] || counts=(1 10 100)
if [[ -z $binary ]]; then
    if [[ -x $repo/target/release/modelhost ]]; then binary=$repo/target/release/modelhost
    else binary=$repo/target/debug/modelhost; fi
fi
[[ -x $binary ]] || { echo "no modelhost binary at $binary (cargo build -p modelhost)" >&2; exit 64; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
customer='{"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"}'

echo "binary: $binary"
echo "| models | VmRSS (MiB) | VmHWM (MiB) | per extra model (KiB) |"
echo "|---:|---:|---:|---:|"
first_rss=""
first_n=""
for n in "${counts[@]}"; do
    work=$(mktemp -d)
    for i in $(seq 1 "$n"); do
        name=$(printf 'm%03d' "$i")
        mkdir -p "$work/registry/$name"
        cp "$repo/registry/churn/model.wasm" "$work/registry/$name/model.wasm"
    done
    port=$(free_port)
    MODEL_NAME=m001 MODEL_NAMES='*' REGISTRY_DIR=$work/registry LOG_DIR=$work/logs PORT=$port \
        HOST=127.0.0.1 LOG_LEVEL=warn MODELHOST_SHUTDOWN_DELAY_MS=0 "$binary" serve 2>"$work/stderr" &
    pid=$!
    served=0
    for _ in $(seq 1 3000); do
        served=$(curl -sf "localhost:$port/models" 2>/dev/null \
            | python3 -c 'import json,sys; print(sum(m["state"] == "READY" for m in json.load(sys.stdin)["models"]))' 2>/dev/null || echo 0)
        [[ $served -ge $n ]] && break
        sleep 0.1
    done
    [[ $served -ge $n ]] || { echo "only $served of $n models served" >&2; kill "$pid"; exit 1; }
    for i in $(seq 1 "$n"); do
        curl -sf -X POST "localhost:$port/models/$(printf 'm%03d' "$i")/predict" \
            -H 'content-type: application/json' -d "$customer" >/dev/null
    done
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$work"
    per=""
    if [[ -n $first_rss && $n -gt $first_n ]]; then
        per=$(( (rss - first_rss) / (n - first_n) ))
    else
        first_rss=$rss; first_n=$n
    fi
    printf '| %d | %.1f | %.1f | %s |\n' "$n" "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)" "$per"
done
