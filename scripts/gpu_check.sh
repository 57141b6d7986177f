#!/usr/bin/env bash
# The GPU check, one command for a machine with an NVIDIA GPU (a server with nvidia-smi, or a
# Jetson): what this machine's Python allows of the tests marked `gpu` (tests/test_gpu.py: device
# noise bit-equal to numpy, device buffers zero-filled over reused memory, the torch CUDA-graph
# backend against the CPU, TensorRT FP32/FP16/INT8 engines and ONNX Runtime on CUDA with every
# sampler, two generators in one process, cuda:1), then the GPU benchmark where torch has CUDA
# (bench/gpu_small.py); results in bench/results/ (or $GPU_CHECK_RESULTS). Every part that
# cannot run here is named with its reason: TensorRT without a CUDA torch (a Jetson) still runs
# its tests, and a machine with torch + CUDA, cuda-python, CuPy and nvcc but no TensorRT or
# onnxruntime-gpu still checks the noise, the device buffers and the torch backend. Installs
# nothing, creates no venv, needs no package index: it runs $PYTHON (default python3) with this
# checkout on PYTHONPATH. At most about 8 minutes (each part has a time limit: 300 s for the
# tests, 150 s for the benchmark). Without an NVIDIA GPU it prints one line and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 && [ ! -e /dev/nvidia0 ] \
   && [ ! -e /etc/nv_tegra_release ]; then
  echo "gpu_check: no NVIDIA GPU here (no nvidia-smi, /dev/nvidia0 or Jetson release file): skipped"
  exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp=$(date -u +%Y-%m-%dT%H%M)
results=${GPU_CHECK_RESULTS:-bench/results}
mkdir -p "$results"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "GPU: $(tr -d '\0' </proc/device-tree/model 2>/dev/null || echo 'Jetson'), $(head -1 /etc/nv_tegra_release)"
fi
# One line per part: what runs and what is skipped, with the reason.
"$PY" - <<'EOF'
import importlib.util
import shutil


def has(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


torch_cuda = "no torch"
if has("torch"):
    import torch
    torch_cuda = (f"torch {torch.__version__} (CUDA {torch.version.cuda}), "
                  f"{torch.cuda.device_count()} device(s)" if torch.cuda.is_available()
                  else f"torch {torch.__version__} sees no CUDA device")
ort_cuda = "no onnxruntime"
if has("onnxruntime"):
    import onnxruntime
    ort_cuda = ("onnxruntime CUDA provider listed"
                if "CUDAExecutionProvider" in onnxruntime.get_available_providers()
                else "onnxruntime without a CUDA provider")
print(f"gpu_check: {torch_cuda}; cuda-python {'yes' if has('cuda.bindings') else 'no'}; "
      f"CuPy {'yes' if has('cupy') else 'no'}; TensorRT {'yes' if has('tensorrt') else 'no'}; "
      f"{ort_cuda}; onnx {'yes' if has('onnx') else 'no'}; "
      f"nvcc {'yes' if shutil.which('nvcc') else 'no'}")
if not has("tensorrt"):
    print("gpu_check: TensorRT tests: skipped (TensorRT is not installed for this python)")
if "listed" not in ort_cuda:
    print("gpu_check: ONNX Runtime CUDA tests: skipped (no onnxruntime-gpu)")
if not has("cuda.bindings"):
    print("gpu_check: device noise and device buffer tests: skipped (no cuda-python)")
if "device(s)" not in torch_cuda:
    print("gpu_check: torch CUDA tests and the benchmark: skipped (no CUDA torch)")
EOF

status=0
if "$PY" -c "import pytest" >/dev/null 2>&1; then
  # Each test skips itself with its reason where this machine lacks what it needs (-rs lists
  # them).
  timeout 300 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider -o addopts="" tests/test_gpu.py \
    --junitxml="$results/$stamp-gpu-tests.xml" || status=$?
else
  echo "gpu_check: gpu tests: skipped (pytest is not installed for $PY)"
fi
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1
then
  timeout 150 "$PY" bench/gpu_small.py --frames 9 --repeats 3 \
    --json "$results/$stamp-small-gpu.json" || status=$?
fi
echo "gpu_check: done (exit status $status); results in $results/$stamp-*"
exit "$status"
