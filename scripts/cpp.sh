#!/usr/bin/env bash
# Build the C++ library (libvidm_rt, vidm-rt-generate) with CMake into build/ and run its CTest
# suite. Installs the one system package it needs, nlohmann-json3-dev, with apt-get when missing.
# The Python cross-checks use .venv/bin/python (run scripts/setup.sh first). Called by
# scripts/test.sh; VIDM_RT_SKIP_CPP=1 there skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cmake c++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: the C++ build needs $tool (apt-get install cmake g++), or set VIDM_RT_SKIP_CPP=1" >&2
    exit 1
  fi
done

have_json() {
  for dir in /usr/include /usr/local/include; do
    [ -f "$dir/nlohmann/json.hpp" ] && return 0
  done
  return 1
}
if ! have_json; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "error: the C++ build needs nlohmann-json3-dev; install it as root" \
         "(apt-get install nlohmann-json3-dev) or set VIDM_RT_SKIP_CPP=1" >&2
    exit 1
  fi
  echo "installing nlohmann-json3-dev (the C++ library's JSON parser) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq nlohmann-json3-dev >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y -qq nlohmann-json3-dev >/dev/null 2>&1; then
      echo "error: apt-get could not install nlohmann-json3-dev; install it (or nlohmann_json" \
           ">= 3.9 where CMake finds it) or set VIDM_RT_SKIP_CPP=1" >&2
      exit 1
    fi
  fi
fi

python_arg=()
if [ -x .venv/bin/python ]; then
  python_arg=(-DVIDM_RT_PYTHON="$PWD/.venv/bin/python")
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${python_arg[@]}" >build.log 2>&1 \
  || { cat build.log >&2; echo "error: CMake configuration failed (log above)" >&2; exit 1; }
cmake --build build --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >>build.log 2>&1 \
  || { tail -n 60 build.log >&2; echo "error: the C++ build failed (full log: build.log)" >&2; exit 1; }
rm -f build.log
(cd build && ctest --output-on-failure)
