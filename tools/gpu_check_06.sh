#!/usr/bin/env bash
# Issue 18's GPU check, prepared for a machine with a CUDA GPU and a CUDA build of torch 2.13.0 (which brings
# triton 3.7.1, the version requirements.txt pins): exercise 06's solution with every test cell (visible and
# hidden) compiled on CUDA, exercise 04's GPU part through its benchmark, and exercise 06's benchmark.
# Not run yet: no GPU was lent to the session that wrote it. Usage, from the repository root:
#     PYTHON=.venv/bin/python tools/gpu_check_06.sh 2>&1 | tee gpu-check-06.log
set -euo pipefail
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset TRITON_INTERPRET  # compiled kernels, not the interpreter
"$PY" -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
out=$(mktemp -d)
time "$PY" -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
    --output "$out/attention_kernel.gpu.ipynb" solutions/06-attention-kernel/attention_kernel.ipynb
"$PY" - "$out/attention_kernel.gpu.ipynb" <<'PYEOF'
import sys, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
for c in nb.cells:
    for o in c.get("outputs", []):
        text = o.get("text") or "\n".join(o.get("traceback", []))
        if text:
            print(f"[{c.metadata.get('nbgrader', {}).get('grade_id', '?')}] {text.strip()[:2000]}")
print("solution notebook: every cell ran on CUDA (nbconvert stops at the first error)")
PYEOF
"$PY" benchmarks/bench_sparse_attention.py --n 16384 --k 8 --device cuda --dtype bfloat16
"$PY" benchmarks/bench_attention_kernel.py --n 4096 16384 65536 --k 8 128
