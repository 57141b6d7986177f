#!/usr/bin/env bash
# Run the test suite; installs the project into .venv first when it is not there yet
# (a fresh clone on CI).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! .venv/bin/python -c "import vidm_rt, torch, pytest, onnxruntime" >/dev/null 2>&1; then
  bash scripts/setup.sh --no-demo
fi
.venv/bin/python -m pytest -q "$@"
