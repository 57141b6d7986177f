#!/usr/bin/env bash
# Run the test suite; installs the project into .venv first when it is not there yet
# (a fresh clone on CI). Then builds the C++ library with CMake and runs its CTest suite
# (scripts/cpp.sh; VIDM_RT_SKIP_CPP=1 skips it), checks the GPU code against the real APIs
# (scripts/api_check.sh), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! .venv/bin/python -c "import vidm_rt, torch, pytest, onnxruntime, pytriton" >/dev/null 2>&1; then
  bash scripts/setup.sh --no-demo
fi
if [ "${VIDM_RT_SKIP_CPP:-0}" != 1 ]; then
  bash scripts/cpp.sh
fi
# The GPU code against the real TensorRT bindings, headers, nvcc, NVRTC and the GPU extras'
# resolution, without a GPU (about a minute; VIDM_RT_SKIP_API_CHECK=1 skips it).
if [ "${VIDM_RT_SKIP_API_CHECK:-0}" != 1 ]; then
  bash scripts/api_check.sh
fi
.venv/bin/python -m pytest -q "$@"
