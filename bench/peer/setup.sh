#!/usr/bin/env bash
# Creates bench/peer/.venv and installs the peer's pinned dependencies from PyPI, then trains the
# peer's model into bench/peer/state/ (the lab's data, n=1200, seed 42).
#
# Usage: bench/peer/setup.sh [--python PYTHON] [--force]
#   --python PYTHON   interpreter to build the venv from (default: python3.11, else python3)
#   --force           recreate the venv even if it exists
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
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

venv=$here/.venv
if [[ $force == 1 ]]; then rm -rf "$venv"; fi
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -m pip freeze > "$here/.venv/freeze.txt"
echo "installed into $venv:"
grep -iE '^(fastapi|pydantic|uvicorn|scikit-learn|pandas|numpy|joblib|uvloop|httptools)==' "$venv/freeze.txt" | sed 's/^/  /'

# Train the model the server loads (the lab's training Job).
cd "$here"
"$venv/bin/python" train.py --state-dir "$here/state" --activate
