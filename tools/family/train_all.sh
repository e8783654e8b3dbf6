#!/usr/bin/env bash
# Train the whole family, one model after another, each logging to workspace/train-<model>.log.
#   nohup tools/family/train_all.sh > workspace/train-all.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p workspace
for m in ${MODELS:-w7-10k w7-50k w7-200k w7-500k w7-1m w7-4m}; do
  echo "$(date -u +%H:%M:%S) start $m"
  .venv/bin/python -m tools.family.train --model "$m" --threads "${THREADS:-2}" --fresh > "workspace/train-$m.log" 2>&1
  echo "$(date -u +%H:%M:%S) done $m"
done
