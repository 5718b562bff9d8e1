#!/usr/bin/env bash
# modelhost against the floor (bench/floor: the lab's /predict on the same Rust stack with the
# model computed natively in the handler) and two Python peers (bench/peer: the lab's FastAPI +
# scikit-learn API; bench/mlserver: MLServer's scikit-learn runtime on v2 infer), one after the
# other on this machine, with the same request mix, concurrency and CPUs. modelhost is measured
# twice: `/predict` (bench/predict.lua) and v2 infer (bench/infer.lua).
#
# Usage: bench/compare.sh [options]
#   --quick             2 s warm-up, 5 s measured, 3 start -> ready runs (a rough look)
#   --skip LIST         comma-separated runs to leave out: floor, infer, peer, mlserver
#   --duration S        measured seconds of load per server (default 30)
#   --warmup S          seconds of load before measuring (default 10)
#   --connections N     wrk connections (default 32)
#   --server-cpus LIST  CPUs both servers are pinned to (default: upper half of the machine)
#   --client-cpus LIST  CPUs wrk and the harness are pinned to (default: the other half)
#   --workers N         tokio worker threads for modelhost = uvicorn workers for the peer
#                       (default: number of server CPUs)
#   --startup-runs N    start -> ready measurements per server (default 5)
#   --modelhost PATH    use this modelhost binary instead of building one
#   --floor PATH        use this floor binary instead of building one
#   --registry DIR      registry modelhost serves `churn` from (default: the repo's registry/)
#   --out DIR           where results go (default bench/results/<UTC timestamp>)
#   -h, --help          this text
#
# Builds `cargo build --release -p modelhost` and the floor (its own workspace, its lockfile a
# subset of the workspace's; CARGO_TARGET_DIR is honoured; default target/), runs
# bench/peer/setup.sh and bench/mlserver/setup.sh if a venv or model is missing, then for each
# server: start -> ready (median of N), and one load run (warm-up, then the measured run)
# sampling the server's process tree for CPU time and peak RSS/PSS. Prints the machine, the
# commands, a Markdown table of every run against the floor, and the modelhost / peer table
# with the ratios against the targets; keeps JSON and logs in --out.
# Needs: wrk, taskset, python3 (>= 3.9), curl, and cargo unless --modelhost is given.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bench=$repo/bench

duration=30
warmup=10
connections=32
server_cpus=""
client_cpus=""
workers=""
startup_runs=5
modelhost_bin=""
floor_bin=""
skip=""
registry=""
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) duration=5; warmup=2; startup_runs=3; shift ;;
    --skip) skip=$2; shift 2 ;;
    --floor) floor_bin=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --client-cpus) client_cpus=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --startup-runs) startup_runs=$2; shift 2 ;;
    --modelhost) modelhost_bin=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

skipped() { [[ ,$skip, == *,$1,* ]]; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "compare.sh: $1 is required: $2" >&2; exit 1; }
}
need wrk "apt-get install wrk"
need taskset "apt-get install util-linux"
need python3 "install Python 3"
need curl "apt-get install curl"
[[ -n $modelhost_bin && ( -n $floor_bin || $skip == *floor* ) ]] ||
  need cargo "install Rust (rustup), or pass --modelhost PATH and --floor PATH"

# CPU split: servers on the upper half, wrk and the harness on the lower half, so the load
# generator does not take CPU from the server it measures.
ncpu=$(nproc)
if [[ -z $server_cpus || -z $client_cpus ]]; then
  if (( ncpu < 2 )); then
    echo "compare.sh: needs at least 2 CPUs (one for the server, one for wrk)" >&2
    exit 1
  fi
  half=$(( ncpu / 2 ))
  range() { if (( $1 == $2 )); then echo "$1"; else echo "$1-$2"; fi; }
  [[ -n $client_cpus ]] || client_cpus=$(range 0 $(( half - 1 )))
  [[ -n $server_cpus ]] || server_cpus=$(range "$half" $(( ncpu - 1 )))
fi
count_cpus() {
  python3 -c 'import sys; print(sum(len(range(int(a), int(b or a) + 1)) for a, _, b in (p.partition("-") for p in sys.argv[1].split(","))))' "$1"
}
server_ncpu=$(count_cpus "$server_cpus")
client_ncpu=$(count_cpus "$client_cpus")
[[ -n $workers ]] || workers=$server_ncpu
wrk_threads=$client_ncpu

out=${out:-$bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
tmp=$(mktemp -d)
child=""
cleanup() {
  # The harness stops the servers it started when it gets SIGTERM.
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs the harness in the background and waits, so a signal reaches the trap at once.
run_harness() {
  local output=$1; shift
  "${harness[@]}" "$@" > "$output" &
  child=$!
  wait "$child"
  child=""
}

# --- modelhost binary ---------------------------------------------------------------------------
if [[ -z $modelhost_bin ]]; then
  target_dir=${CARGO_TARGET_DIR:-$repo/target}
  echo "== building modelhost (release, CARGO_TARGET_DIR=$target_dir)" >&2
  (cd "$repo" && CARGO_TARGET_DIR=$target_dir cargo build --release -p modelhost) >&2
  modelhost_bin=$target_dir/release/modelhost
fi
[[ -x $modelhost_bin ]] || { echo "compare.sh: no modelhost binary at $modelhost_bin" >&2; exit 1; }

# --- floor ----------------------------------------------------------------------------------------
if ! skipped floor && [[ -z $floor_bin ]]; then
  target_dir=${CARGO_TARGET_DIR:-$repo/target}
  echo "== building the floor (release, CARGO_TARGET_DIR=$target_dir)" >&2
  (cd "$bench/floor" && CARGO_TARGET_DIR=$target_dir cargo build --release --locked) >&2
  floor_bin=$target_dir/release/modelhost-floor
fi

# --- peer -----------------------------------------------------------------------------------------
peer=$bench/peer
if ! skipped peer && [[ ! -x $peer/.venv/bin/uvicorn || ! -f $peer/state/registry/current_model.txt ]]; then
  echo "== setting up the Python peer (bench/peer/setup.sh)" >&2
  "$peer/setup.sh" >&2
fi
mlserver=$bench/mlserver
if ! skipped mlserver && [[ ! -x $mlserver/.venv/bin/mlserver || ! -f $mlserver/state/models/churn/model.joblib ]]; then
  echo "== setting up MLServer (bench/mlserver/setup.sh)" >&2
  "$mlserver/setup.sh" >&2
fi

# --- machine --------------------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
mem_total=$(free -h | awk '/^Mem:/ {print $2}')
python3 - "$out/machine.json" <<EOF
import json, sys
json.dump({
    "nproc": $ncpu,
    "cpu_model": "$cpu_model",
    "memory": "$mem_total",
    "kernel": "$(uname -r)",
    "loadavg_before": "$(loadavg)",
    "git": "$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && git diff --quiet 2>/dev/null || echo '+dirty')",
    "rustc": "$(rustc --version 2>/dev/null || echo unknown)",
    "python": "$(python3 --version)",
    "wrk": "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)",
}, open(sys.argv[1], "w"), indent=2)
EOF

# --- servers ----------------------------------------------------------------------------------------
mh_port=18301
peer_port=18302
floor_port=18303
mlserver_port=18304
mh_logs=$tmp/modelhost-logs
peer_logs=$tmp/peer-logs
mkdir -p "$mh_logs" "$peer_logs"
harness=(taskset -c "$client_cpus" python3 "$bench/harness.py")

mh_env=(
  --env "REGISTRY_DIR=${registry:-$repo/registry}" --env MODEL_NAME=churn --env HOST=127.0.0.1
  --env "PORT=$mh_port" --env "LOG_DIR=$mh_logs" --env LOG_LEVEL=warn --env LOG_FORMAT=json
  --env MONITORING_TOKEN=bench-token --env MODELHOST_SHUTDOWN_DELAY_MS=0
  --env MODELHOST_LOG_MAX_MIB=65536 --env "TOKIO_WORKER_THREADS=$workers"
)
mh_cmd=(taskset -c "$server_cpus" "$modelhost_bin" serve)

# The peer gets the same CPUs, one uvicorn worker per modelhost worker thread, no access log
# (modelhost logs no line per request either, besides the prediction log), and single-threaded
# BLAS (the OpenBLAS overrides set on some machines are removed for this command only).
peer_env=(
  --env "REGISTRY_DIR=$peer/state/registry" --env "MODELS_DIR=$peer/state/models"
  --env MODEL_NAME=churn --env "LOG_DIR=$peer_logs" --env LOG_LEVEL=warning
  --env OMP_NUM_THREADS=1 --env OPENBLAS_NUM_THREADS=1 --env MKL_NUM_THREADS=1
  --env OPENBLAS_CORETYPE= --env OPENBLAS_L2_SIZE=
)
peer_cmd=(
  taskset -c "$server_cpus" "$peer/.venv/bin/python" -m uvicorn --app-dir "$peer" app:app
  --host 127.0.0.1 --port "$peer_port" --workers "$workers" --no-access-log --log-level warning
)

floor_cmd=(taskset -c "$server_cpus" "$floor_bin" "${registry:-$repo/registry}/churn/model.wasm")
floor_env=(--env HOST=127.0.0.1 --env "PORT=$floor_port" --env "TOKIO_WORKER_THREADS=$workers")

# MLServer: inference in $workers worker process(es) beside the HTTP process (its default is
# one), metrics and gRPC on ports of their own, the same BLAS settings as the peer. It answers
# /v2/health/ready before its workers have loaded the model, so readiness is the model's.
mlserver_env=(
  --env "MLSERVER_HTTP_PORT=$mlserver_port" --env "MLSERVER_GRPC_PORT=$(( mlserver_port + 10 ))"
  --env "MLSERVER_METRICS_PORT=$(( mlserver_port + 20 ))" --env "MLSERVER_PARALLEL_WORKERS=$workers"
  --env MLSERVER_HOST=127.0.0.1 --env MLSERVER_DEBUG=false --env "MLSERVER_METRICS_DIR=$tmp/mlserver-metrics"
  --env OMP_NUM_THREADS=1 --env OPENBLAS_NUM_THREADS=1 --env MKL_NUM_THREADS=1
  --env OPENBLAS_CORETYPE= --env OPENBLAS_L2_SIZE=
)
mlserver_cmd=(taskset -c "$server_cpus" "$mlserver/.venv/bin/mlserver" start "$mlserver/state/models")
infer_probe='{"id":"probe-1","inputs":[{"name":"tenure_months","shape":[1],"datatype":"INT64","data":[6]},{"name":"num_complaints","shape":[1],"datatype":"INT64","data":[3]},{"name":"avg_session_minutes","shape":[1],"datatype":"FP64","data":[12.5]},{"name":"plan_type","shape":[1],"datatype":"BYTES","data":["basic"]},{"name":"region","shape":[1],"datatype":"BYTES","data":["AF"]}]}'
mlserver_probe='{"id":"probe-1","parameters":{"content_type":"pd"},"outputs":[{"name":"predict_proba"}],"inputs":[{"name":"tenure_months","shape":[1],"datatype":"INT64","data":[6]},{"name":"num_complaints","shape":[1],"datatype":"INT64","data":[3]},{"name":"avg_session_minutes","shape":[1],"datatype":"FP64","data":[12.5]},{"name":"plan_type","shape":[1],"datatype":"BYTES","data":["basic"]},{"name":"region","shape":[1],"datatype":"BYTES","data":["AF"]}]}'
infer_args=(--path /v2/models/churn/infer --lua "$bench/infer.lua")

load_args=(
  --wrk-cpus "$client_cpus" --server-cpus "$server_cpus" --threads "$wrk_threads" --connections "$connections"
  --warmup "$warmup" --duration "$duration"
)

{
  echo "## Run"
  echo
  echo "- machine: $ncpu × $cpu_model, $mem_total RAM, Linux $(uname -r); load average before: $(loadavg)"
  echo "- servers pinned to CPUs $server_cpus; wrk ($wrk_threads threads, $connections connections) and the harness to CPUs $client_cpus"
  echo "- modelhost: $workers tokio worker thread(s) (TOKIO_WORKER_THREADS), prediction log on; $("$modelhost_bin" --version 2>/dev/null || echo modelhost), git $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["git"])' "$out/machine.json")"
  echo "- peer: $workers uvicorn worker(s), uvloop + httptools, prediction log on, access log off; $(grep -iE '^(fastapi|uvicorn|scikit-learn|pandas|numpy)==' "$peer/.venv/freeze.txt" 2>/dev/null | tr '\n' ' ')"
  echo "- floor: $workers tokio worker thread(s), bench/floor (axum $(grep -A1 '^name = "axum"$' "$bench/floor/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p'), tokio $(grep -A1 '^name = "tokio"$' "$bench/floor/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')), no log, no metrics, no sandbox"
  echo "- MLServer: $workers parallel inference worker(s); $(grep -iE '^(mlserver|mlserver-sklearn|scikit-learn)==' "$mlserver/.venv/freeze.txt" 2>/dev/null | tr '\n' ' ')"
  echo "- load: ${warmup} s warm-up, then ${duration} s measured; start → ready: median of $startup_runs; skipped: ${skip:-none}"
  echo
  echo '```'
  printf '%s ' "${mh_env[@]}" | sed 's/--env //g'; echo "${mh_cmd[*]}"
  printf '%s ' "${peer_env[@]}" | sed 's/--env //g'; echo "${peer_cmd[*]}"
  printf '%s ' "${floor_env[@]}" | sed 's/--env //g'; echo "${floor_cmd[*]}"
  printf '%s ' "${mlserver_env[@]}" | sed 's/--env //g'; echo "${mlserver_cmd[*]}"
  echo "taskset -c $client_cpus wrk -t $wrk_threads -c $connections -d ${duration}s --timeout 10s -s bench/predict.lua http://127.0.0.1:PORT/predict"
  echo "[INFER_DIALECT=mlserver] taskset -c $client_cpus wrk -t $wrk_threads -c $connections -d ${duration}s --timeout 10s -s bench/infer.lua http://127.0.0.1:PORT/v2/models/churn/infer"
  echo '```'
} | tee "$out/run.md"

# run_server NAME PORT LOG_DIR|"" [harness load options and --env K=V ...] -- CMD...
# Options before `--` go to both harness commands but for the load-only ones (--path, --lua,
# --probe-body, --log-dir), which go to `load` alone.
run_server() {
  local name=$1 port=$2 logs=$3; shift 3
  local -a common=() load_only=() cmd=()
  [[ -z $logs ]] || load_only+=(--log-dir "$logs")
  while [[ $1 != -- ]]; do
    case "$1" in
      --path|--lua|--probe-body) load_only+=("$1" "$2") ;;
      *) common+=("$1" "$2") ;;
    esac
    shift 2
  done
  shift
  cmd=("$@")
  echo "== $name: start -> ready x $startup_runs" >&2
  run_harness "$tmp/$name-startup.json" startup --port "$port" --runs "$startup_runs" \
    --server-log "$out/$name.log" "${common[@]}" -- "${cmd[@]}"
  echo "== $name: load (${warmup} s warm-up + ${duration} s)" >&2
  run_harness "$tmp/$name-load.json" load --port "$port" --server-log "$out/$name.log" \
    "${load_args[@]}" "${load_only[@]}" "${common[@]}" -- "${cmd[@]}"
  python3 -c 'import json,sys; print(json.dumps({"startup": json.load(open(sys.argv[1])), "load": json.load(open(sys.argv[2]))}, indent=2))' \
    "$tmp/$name-startup.json" "$tmp/$name-load.json" > "$out/$name.json"
  [[ -z $logs ]] || rm -f "$logs"/predictions.log*
}

runs=()
if ! skipped floor; then
  run_server floor "$floor_port" "" --lua "$bench/predict.lua" "${floor_env[@]}" -- "${floor_cmd[@]}"
  runs+=(--run "floor=$out/floor.json")
fi
run_server modelhost "$mh_port" "$mh_logs" --lua "$bench/predict.lua" "${mh_env[@]}" -- "${mh_cmd[@]}"
runs+=(--run "modelhost /predict=$out/modelhost.json")
if ! skipped infer; then
  run_server modelhost-infer "$mh_port" "$mh_logs" "${infer_args[@]}" --probe-body "$infer_probe" \
    "${mh_env[@]}" -- "${mh_cmd[@]}"
  runs+=(--run "modelhost v2 infer=$out/modelhost-infer.json")
fi
if ! skipped peer; then
  run_server peer "$peer_port" "$peer_logs" --lua "$bench/predict.lua" "${peer_env[@]}" -- "${peer_cmd[@]}"
  runs+=(--run "Python peer (FastAPI) /predict=$out/peer.json")
fi
if ! skipped mlserver; then
  # INFER_DIALECT reaches wrk (through the harness's environment), not the server.
  INFER_DIALECT=mlserver run_server mlserver "$mlserver_port" "" "${infer_args[@]}" \
    --probe-body "$mlserver_probe" --ready-path /v2/models/churn/ready "${mlserver_env[@]}" -- "${mlserver_cmd[@]}"
  runs+=(--run "MLServer (scikit-learn) v2 infer=$out/mlserver.json")
fi

python3 - "$out/machine.json" "$(loadavg)" <<'EOF'
import json, sys
machine = json.load(open(sys.argv[1]))
machine["loadavg_after"] = sys.argv[2]
json.dump(machine, open(sys.argv[1], "w"), indent=2)
EOF

{
  echo
  echo "## Results"
  echo
  if ! skipped floor; then
    echo "Every run against the floor (× floor: throughput and CPU as a fraction or multiple of the floor's):"
    echo
    python3 "$bench/harness.py" floor-report "${runs[@]}" --machine "$out/machine.json"
    echo
  fi
  if ! skipped peer; then
    python3 "$bench/harness.py" report --modelhost "$out/modelhost.json" --peer "$out/peer.json" --machine "$out/machine.json"
    echo
  fi
  echo "The same customer, every server:"
  echo
  echo '```'
  for arg in "${runs[@]}"; do
    [[ $arg == --run ]] && continue
    python3 -c 'import json,sys; print(sys.argv[1] + ": " + json.load(open(sys.argv[2]))["load"]["sample_response"])' "${arg%%=*}" "${arg#*=}"
  done
  echo '```'
} | tee -a "$out/run.md"
echo "results: $out" >&2
