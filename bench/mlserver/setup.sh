#!/usr/bin/env bash
# Creates bench/mlserver/.venv with MLServer and its scikit-learn runtime from PyPI (every package
# pinned in requirements.txt), and writes bench/mlserver/state/models/churn/: the peer's fitted
# scikit-learn pipeline (bench/peer, trained by its setup.sh, which this runs if needed) as a
# plain joblib file, and the model-settings.json that serves it as `churn` over v2 infer.
#
# Usage: bench/mlserver/setup.sh [--python PYTHON] [--force]
#   --python PYTHON   interpreter to build the venv from (default: python3.11, else python3)
#   --force           recreate the venv even if it exists
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
peer=$here/../peer
python=""
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $1" >&2; exit 64 ;;
  esac
done
if [[ -z $python ]]; then
  python=$(command -v python3.11 || command -v python3 || true)
fi
if [[ -z $python ]] || ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup.sh: needs Python >= 3.11 (pass --python PATH)" >&2
  exit 1
fi

if [[ ! -f $peer/state/registry/current_model.txt ]]; then
  "$peer/setup.sh" ${python:+--python "$python"}
fi

venv=$here/.venv
if [[ $force == 1 ]]; then rm -rf "$venv"; fi
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -m pip freeze > "$venv/freeze.txt"
echo "installed into $venv:"
grep -iE '^(mlserver|mlserver-sklearn|scikit-learn|pandas|numpy|uvicorn|fastapi)==' "$venv/freeze.txt" | sed 's/^/  /'

# The peer's current model is a bundle {pipeline, threshold, training_stats}; MLServer's runtime
# loads a bare estimator, so the pipeline alone is written out (same scikit-learn version).
model_dir=$here/state/models/churn
mkdir -p "$model_dir"
"$venv/bin/python" - "$peer/state" "$model_dir" <<'PY'
import json, sys
from pathlib import Path
import joblib

state, model_dir = Path(sys.argv[1]), Path(sys.argv[2])
file = (state / "registry" / "current_model.txt").read_text().strip()
bundle = joblib.load(state / "models" / Path(file).name)
joblib.dump(bundle["pipeline"], model_dir / "model.joblib")
(model_dir / "model-settings.json").write_text(json.dumps({
    "name": "churn",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib", "version": Path(file).stem.removeprefix("churn_")},
}, indent=2))
print(f"wrote {model_dir}/model.joblib from {file}")
PY
