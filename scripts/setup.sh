#!/usr/bin/env bash
# Set up vidm-rt on a fresh machine: create .venv, install the project with its extras, and run
# the demo (a short video from the reference sampler). `--no-demo` skips the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
step() { echo "setup: $*" >&2; }
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$python" --version 2>&1)"
  "$python" -m venv .venv
fi
step "upgrading pip"
.venv/bin/python -m pip install --quiet --upgrade pip
# The pinned CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
step "installing PyTorch 2.13.0 (CPU build)"
.venv/bin/python -m pip install --quiet "torch==2.13.0"
step "installing vidm-rt and its extras (ONNX, ONNX Runtime, video writers, eval, serve, tests)"
# serve: Triton Inference Server through PyTriton, for `vidm-rt serve` and its tests (~270 MB).
.venv/bin/python -m pip install --quiet -e ".[torch,cpu,video,dev,eval,serve]"

if [ "${1:-}" != "--no-demo" ]; then
  # The bundled demo model, exported once into the cache (for a batch of 16), then run on
  # ONNX Runtime: 16 videos of 32 frames tiled 4 x 4, each 32x32 frame shown 4x larger.
  step "writing the demo videos (the bundled model is exported once into the cache first)"
  mkdir -p demo
  .venv/bin/vidm-rt generate --batch 16 --frames 32 --seed 0 --grid 4 --scale 4 \
    --out demo/demo.gif --out demo/demo.mp4
  echo "demo: demo/demo.gif and demo/demo.mp4 (16 videos of 32 frames, 4 x 4)"
fi
