#!/usr/bin/env bash
# The GPU code against the real APIs, on a machine without a GPU (CI runs it from
# scripts/test.sh). One line per check, "api_check: ...":
#  - every TensorRT name, method and keyword vidm-rt uses exists in the real Python bindings of
#    TensorRT 10.3 (JetPack 6), 11.1 and the 10.x / 11.x versions the [gpu] / [gpu-cu13] extras
#    resolve to. The bindings wheels install from PyPI, but the extension links libnvinfer,
#    libnvonnxparser and libnvinfer_plugin, which download from NVIDIA's index: it is imported
#    over stub libraries of those names that define the few C functions it links (found with nm;
#    they are only called when a builder, runtime or parser is created, which the check never
#    does), so the real classes and enums can be inspected (scripts/api_check.py);
#  - the C++ TensorRT engine compiles against NVIDIA's headers of TensorRT 10.3 and 11.1
#    (../shared/third_party/tensorrt-headers, or $VIDM_TRT_HEADERS) and the CUDA runtime headers;
#  - the noise kernel compiles for sm_87 (Jetson Orin) and sm_90 (Hopper) with nvcc, and with the
#    real NVRTC 12.6 and 13.x through cuda-python (and a GPU newer than NVRTC gets PTX);
#  - each GPU extra of pyproject.toml resolves (pip install --dry-run --report) to one CUDA major
#    for TensorRT, cuda-python, NVRTC and onnxruntime-gpu's CUDA libraries. TensorRT's own
#    libraries are placeholders that download at install, so the TensorRT requirement resolves
#    without its dependencies.
# A missing tool (a compiler, nvcc, the headers, the package index) skips its check with one
# line; a real mismatch fails (exit 1). About a minute with a warm pip cache.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
HEADERS=${VIDM_TRT_HEADERS:-../shared/third_party/tensorrt-headers}
[ -d "$HEADERS" ] || HEADERS=/work/shared/third_party/tensorrt-headers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
status=0
say() { echo "api_check: $*"; }
fail() { say "$*"; status=1; }
# pip, quiet; its output goes to $work/pip.log (shown when a step fails)
pipq() { "$PY" -m pip --disable-pip-version-check "$@" >>"$work/pip.log" 2>&1; }
checker() { "$PY" scripts/api_check.py "$@"; }

# ---- extras: one CUDA major each ----------------------------------------------------------
checker docs || status=1
index=1
pipq download --no-deps --only-binary=:all: -d "$work/wheels" "tensorrt-cu12-bindings==10.3.0" \
  || index=0
declare -A resolved   # extra -> the TensorRT version it resolves to
for extra in gpu gpu-cu13 jetson jetson-cu13; do
  if [ "$index" = 0 ]; then
    say "extra [$extra]: skipped (no package index reachable)"
    continue
  fi
  mapfile -t reqs < <(checker requirements "$extra")
  trt=() rest=()
  for r in "${reqs[@]}"; do
    case "$r" in tensorrt*) trt+=("$r") ;; *) rest+=("$r") ;; esac
  done
  platform=()
  case "$extra" in  # Jetson: aarch64 wheels for JetPack's Python (6: 3.10, 7: 3.12)
    jetson*)
      for tag in manylinux_2_35 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014; do
        platform+=(--platform "${tag}_aarch64")
      done
      platform+=(--only-binary=:all: --python-version "$([ "$extra" = jetson ] && echo 3.10 || echo 3.12)")
      ;;
  esac
  report=$work/$extra.json trt_report=""
  if ! pipq install --dry-run --ignore-installed --target "$work/t-$extra" "${platform[@]}" \
       --report "$report" "${rest[@]}"; then
    fail "extra [$extra]: FAIL, pip cannot resolve ${rest[*]}: $(grep -m1 -i error "$work/pip.log")"
    continue
  fi
  if [ ${#trt[@]} -gt 0 ]; then
    trt_report=$work/$extra-tensorrt.json
    if ! pipq install --dry-run --no-deps --ignore-installed --report "$trt_report" "${trt[@]}"; then
      fail "extra [$extra]: FAIL, pip cannot resolve ${trt[*]}"
      continue
    fi
    resolved[$extra]=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["install"][0]["metadata"]["version"])' "$trt_report")
  fi
  checker extras "$extra" "$report" ${trt_report:+"$trt_report"} || status=1
done

# ---- TensorRT bindings: vidm-rt's calls against the real classes --------------------------
stub_libs() {  # stub_libs SO DIR: the libraries SO needs from TensorRT, as stubs in DIR
  local so=$1 dir=$2
  mkdir -p "$dir"
  nm -D --undefined-only --format=posix "$so" \
    | awk '$2 == "U" && $1 !~ /@/ && $1 !~ /^_?Py/ {print "void* " $1 "(void) { return 0; }"}' \
    > "$dir/stub.c"
  for lib in $(readelf -d "$so" | sed -n 's/.*Shared library: \[\(libnv[^]]*\)\].*/\1/p'); do
    cc -shared -fPIC -o "$dir/$lib" "$dir/stub.c" || return 1
  done
}
if [ "$index" = 0 ]; then
  say "TensorRT bindings: skipped (no package index reachable)"
elif ! command -v cc >/dev/null || ! command -v nm >/dev/null || ! command -v readelf >/dev/null; then
  say "TensorRT bindings: skipped (needs cc, nm and readelf: apt-get install gcc binutils)"
else
  for spec in "cu12 10.3.0" "cu12 ${resolved[gpu]:-}" "cu13 11.1.0.106" "cu13 ${resolved[gpu-cu13]:-}"; do
    read -r cuda version <<<"$spec"
    [ -n "${version:-}" ] || continue
    dir=$work/trt-$version
    [ -d "$dir" ] && continue   # a resolved version that is already checked
    if ! pipq download --no-deps --only-binary=:all: -d "$work/wheels" \
         "tensorrt-$cuda-bindings==$version"; then
      fail "TensorRT $version bindings: FAIL, no tensorrt-$cuda-bindings $version wheel for $PY"
      continue
    fi
    mkdir -p "$dir"
    "$PY" -m zipfile -e "$work"/wheels/tensorrt_"$cuda"_bindings-"$version"-*.whl "$dir"
    so=$(ls "$dir"/tensorrt_bindings/tensorrt*.so | head -1)
    if ! stub_libs "$so" "$dir/stubs"; then
      fail "TensorRT $version bindings: FAIL, cannot build the stub libraries"
      continue
    fi
    LD_LIBRARY_PATH="$dir/stubs" PYTHONPATH="$dir" checker tensorrt || status=1
  done
fi

# ---- the C++ engine against the real headers ------------------------------------------------
cuda_include=""
for dir in "${CUDA_HOME:-/nonexistent}/include" /usr/local/cuda/include \
           "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")/../include"; do
  if [ -f "$dir/cuda_runtime_api.h" ]; then cuda_include=$dir; break; fi
done
if ! command -v c++ >/dev/null; then
  say "C++ TensorRT engine: skipped (no C++ compiler)"
elif [ ! -d "$HEADERS" ]; then
  say "C++ TensorRT engine: skipped (no TensorRT headers at $HEADERS; set VIDM_TRT_HEADERS)"
elif [ -z "$cuda_include" ]; then
  say "C++ TensorRT engine: skipped (no CUDA runtime headers: set CUDA_HOME)"
else
  for version in v10.3.0 v11.1; do
    if c++ -std=c++17 -fsyntax-only -Wall -Wextra -Wshadow -Werror -DVIDM_RT_VERSION_STRING='"0"' \
         -Icpp/include -Icpp/src -isystem "$HEADERS/$version/include" -isystem "$cuda_include" \
         cpp/src/tensorrt/tensorrt_engine.cpp 2>"$work/cxx.log"; then
      say "C++ TensorRT engine: ok against TensorRT ${version#v} headers and $cuda_include"
    else
      fail "C++ TensorRT engine: FAIL against TensorRT ${version#v} headers: $(head -3 "$work/cxx.log")"
    fi
  done
fi

# ---- the noise kernel: nvcc and NVRTC for sm_87 and sm_90 -----------------------------------
if ! command -v nvcc >/dev/null; then
  say "noise kernel (nvcc): skipped (no nvcc on PATH)"
elif nvcc -c -gencode arch=compute_87,code=sm_87 -gencode arch=compute_90,code=sm_90 \
     --fmad=false -Ividm_rt/kernels -Icpp/src/tensorrt cpp/src/tensorrt/noise_launch.cu \
     -o "$work/noise.o" 2>"$work/nvcc.log"; then
  archs=$(strings "$work/noise.o" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')
  if [[ "$archs" == *sm_87*sm_90* ]]; then
    say "noise kernel (nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')): ok for sm_87 and sm_90"
  else
    fail "noise kernel (nvcc): FAIL, the object holds ${archs:-no cubin}, not sm_87 and sm_90"
  fi
else
  fail "noise kernel (nvcc): FAIL: $(head -3 "$work/nvcc.log")"
fi
for spec in "12.6 cuda-bindings==12.9.* nvidia-cuda-nvrtc-cu12==12.6.*" \
            "13 cuda-bindings==13.* nvidia-cuda-nvrtc==13.*"; do
  read -r nvrtc bindings library <<<"$spec"
  if [ "$index" = 0 ]; then
    say "noise kernel (NVRTC $nvrtc): skipped (no package index reachable)"
    continue
  fi
  target=$work/nvrtc-$nvrtc
  if ! pipq install --target "$target" "$bindings" "$library"; then
    fail "noise kernel (NVRTC $nvrtc): FAIL, cannot install $bindings $library"
    continue
  fi
  libs=$(dirname "$(find "$target/nvidia" -name 'libnvrtc.so*' | head -1)")
  LD_LIBRARY_PATH="$libs" PYTHONPATH="$target" checker nvrtc || status=1
done

if [ "$status" != 0 ] && [ -s "$work/pip.log" ]; then
  grep -i "error" "$work/pip.log" | tail -5 | sed 's/^/api_check: pip: /'
fi
say "done in $((SECONDS - start)) s ($([ "$status" = 0 ] && echo passed || echo FAILED))"
exit "$status"
