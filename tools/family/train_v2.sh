#!/usr/bin/env bash
# Train model family v2 in the background, at the lowest priority, in two lanes of one thread each (one thread is
# faster than two on a busy 2-core machine): lane 1 the largest model, lane 2 the five others, smallest first.
# Resumable: run it again after a kill or a reboot and each model continues from its last checkpoint (one a minute).
#   tools/family/train_v2.sh            # start (or resume)
#   python -m tools.family.train_v2 --status
#   tail -f /var/tmp/w7-family-v2/lane1.log /var/tmp/w7-family-v2/lane2.log
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${W7_V2_ROOT:-/var/tmp/w7-family-v2}
PY=${PYTHON:-python}
mkdir -p "$ROOT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nohup nice -n 19 "$PY" -m tools.family.train_v2 --root "$ROOT" --model w7-4m >> "$ROOT/lane1.log" 2>&1 &
echo "lane 1 (w7-4m): pid $!"
nohup nice -n 19 "$PY" -m tools.family.train_v2 --root "$ROOT" --model w7-10k --model w7-50k --model w7-200k \
  --model w7-500k --model w7-1m >> "$ROOT/lane2.log" 2>&1 &
echo "lane 2 (w7-10k .. w7-1m): pid $!"
