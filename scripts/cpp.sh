#!/usr/bin/env bash
# Build the C++ library (libvidm_rt, vidm-rt-generate) with CMake into build/ and run its CTest
# suite, each test program also under valgrind's memcheck (the memcheck_* tests: invalid accesses
# and leaks fail them). Installs the system packages it needs, nlohmann-json3-dev and valgrind,
# with apt-get when missing. The Python cross-checks use .venv/bin/python (run scripts/setup.sh
# first). Called by scripts/test.sh; VIDM_RT_SKIP_CPP=1 there skips it, VIDM_RT_MEMCHECK=0 here
# leaves out the valgrind runs.
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
have_valgrind() { command -v valgrind >/dev/null 2>&1; }

# apt_install PACKAGE WHY: installs PACKAGE as root (or through password-less sudo), or fails
# with one line saying what to do.
apt_install() {
  local package=$1 why=$2 sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "error: the C++ build needs $package ($why); install it as root" \
           "(apt-get install $package) or set VIDM_RT_SKIP_CPP=1" >&2
      exit 1
    fi
  fi
  echo "installing $package ($why) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq "$package" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y -qq "$package" >/dev/null 2>&1; then
      echo "error: apt-get could not install $package; install it or set VIDM_RT_SKIP_CPP=1" >&2
      exit 1
    fi
  fi
}

have_json || apt_install nlohmann-json3-dev "the C++ library's JSON parser"
memcheck=OFF
if [ "${VIDM_RT_MEMCHECK:-1}" != 0 ]; then
  have_valgrind || apt_install valgrind "the memory checker the C++ tests run under"
  memcheck=ON
fi

python_arg=()
if [ -x .venv/bin/python ]; then
  python_arg=(-DVIDM_RT_PYTHON="$PWD/.venv/bin/python")
fi
# The Python cross-checks are required here (CI): a Python without numpy/onnx/onnxruntime fails
# the configuration rather than silently dropping python_crosscheck and sample_program.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIDM_RT_MEMCHECK=$memcheck "${python_arg[@]}" \
  -DVIDM_RT_REQUIRE_PYTHON_CHECKS=ON \
  >build.log 2>&1 \
  || { cat build.log >&2; echo "error: CMake configuration failed (log above)" >&2; exit 1; }
cmake --build build --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >>build.log 2>&1 \
  || { tail -n 60 build.log >&2; echo "error: the C++ build failed (full log: build.log)" >&2; exit 1; }
rm -f build.log
(cd build && ctest --output-on-failure)
