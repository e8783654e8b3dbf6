#!/usr/bin/env bash
# Create (or reuse) the course environment in .venv: the pinned packages plus the course package, editable.
# Idempotent: a second run with unchanged requirements does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
STAMP="$VENV/.week7-env"
want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import week7, torch" 2>/dev/null; then
  echo "setup_env: $VENV is up to date"
  exit 0
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup_env: error: $PYTHON not found. Install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv," >&2
  echo "           or pyenv install 3.11) or run with PYTHON=/path/to/python3.11." >&2
  exit 2
fi
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup_env: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade "pip>=23.2" >/dev/null
echo "setup_env: installing pinned packages (first time: about 3 minutes, 1.9 GB)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -c "import week7, torch, transformers, nbgrader, jupyter_book" || {
  echo "setup_env: error: the environment is incomplete (see the pip messages above)" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "setup_env: ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
