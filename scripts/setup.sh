#!/usr/bin/env bash
# Set up vidm-rt on a fresh machine: create .venv, install the project with its extras, and run
# the demo (a short video from the reference sampler). `--no-demo` skips the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The pinned CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[torch,cpu,video,dev,eval]"

if [ "${1:-}" != "--no-demo" ]; then
  # The bundled demo model, exported once into the cache, then run on ONNX Runtime.
  mkdir -p demo
  .venv/bin/vidm-rt generate --frames 16 --seed 0 --out demo/demo.gif
  echo "demo video: demo/demo.gif"
fi
