#!/usr/bin/env bash
# The GPU check, one command for a machine with an NVIDIA GPU: the tests marked `gpu` and the
# GPU benchmark (bench/gpu_small.py: torch CUDA graphs vs torch eager vs the reference loop;
# ONNX Runtime CUDA and TensorRT where installed, else one line each saying they were skipped),
# results as JSON in bench/results/. Installs nothing and creates no venv: it runs the python3
# on PATH (or $PYTHON) with this checkout on PYTHONPATH. Sized to finish within 4 minutes on an
# H100-class GPU (each part has a time limit: 100 s for the tests, 130 s for the benchmark).
# On a machine without a GPU it prints one line and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 \
   || ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
        >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (no nvidia-smi, or $PY's torch sees no CUDA device): skipped"
  exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp=$(date -u +%Y-%m-%dT%H%M)
mkdir -p bench/results
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" - <<'EOF'
import importlib.util
import torch
have = {m: importlib.util.find_spec(m) is not None for m in (
    "pytest", "safetensors", "onnx", "onnxruntime", "tensorrt", "cuda.bindings", "cupy")}
print(f"python3: torch {torch.__version__} (CUDA {torch.version.cuda}), "
      + ", ".join(f"{m} {'yes' if ok else 'no'}" for m, ok in have.items()))
EOF

status=0
if "$PY" -c "import pytest" >/dev/null 2>&1; then
  timeout 100 "$PY" -m pytest -q -m gpu -p no:cacheprovider -o addopts="" tests/test_gpu.py \
    --junitxml="bench/results/$stamp-gpu-tests.xml" || status=$?
else
  echo "gpu tests: skipped (pytest is not installed for $PY)"
fi
timeout 130 "$PY" bench/gpu_small.py --frames 9 --repeats 3 \
  --json "bench/results/$stamp-small-gpu.json" || status=$?
echo "gpu_check: done (exit status $status); results in bench/results/$stamp-*"
exit "$status"
