"""The checks of scripts/api_check.sh that run Python: vidm-rt's TensorRT calls against the real
bindings, the noise kernel through the real NVRTC, and the resolution of the GPU extras.

    python scripts/api_check.py tensorrt            (tensorrt_bindings importable)
    python scripts/api_check.py nvrtc               (cuda.bindings + an NVRTC library importable)
    python scripts/api_check.py extras EXTRA REPORT...     (pip --report files of the extra)
    python scripts/api_check.py requirements EXTRA          (its requirements in pyproject.toml)
    python scripts/api_check.py docs                        (docs/gpu.md's table = the extras)

Each prints one line per check, "api_check: ..."; a mismatch exits 1. No torch, no GPU.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
# Where vidm-rt calls TensorRT (every `trt.X` there must be in USED below).
TENSORRT_CALLERS = ("vidm_rt/build.py", "vidm_rt/runtime/tensorrt_backend.py")

# Every TensorRT name vidm-rt uses, by class (module level: ""); the objects' methods and
# properties are listed by hand from the two callers above, the module-level names are also
# found there automatically (`module_names`).
USED = {
    "": ["__version__", "Logger", "Runtime", "Builder", "OnnxParser", "nptype", "float32",
         "float16", "TensorIOMode", "ExecutionContextAllocationStrategy",
         "NetworkDefinitionCreationFlag", "MemoryPoolType", "BuilderFlag", "DeviceType"],
    "Logger": ["WARNING"],
    "TensorIOMode": ["INPUT"],
    "ExecutionContextAllocationStrategy": ["USER_MANAGED"],
    "NetworkDefinitionCreationFlag": ["STRONGLY_TYPED"],
    "MemoryPoolType": ["WORKSPACE"],
    "BuilderFlag": ["TF32", "GPU_FALLBACK"],
    "DeviceType": ["DLA"],
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": ["num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
                    "get_tensor_dtype", "device_memory_size_v2", "create_execution_context"],
    "IExecutionContext": ["set_device_memory", "set_input_shape", "set_tensor_address",
                          "execute_async_v3"],
    "Builder": ["num_DLA_cores", "create_network", "create_builder_config",
                "create_optimization_profile", "build_serialized_network"],
    "OnnxParser": ["parse_from_file", "num_errors", "get_error"],
    "INetworkDefinition": ["num_inputs", "get_input", "num_layers", "get_layer"],
    "ITensor": ["name", "shape", "dtype"],
    "IBuilderConfig": ["set_memory_pool_limit", "builder_optimization_level", "clear_flag",
                       "set_flag", "default_device_type", "DLA_core", "create_timing_cache",
                       "set_timing_cache", "add_optimization_profile"],
    "IOptimizationProfile": ["set_shape"],
    "ITimingCache": ["serialize"],
}
# Only the weakly typed build (TensorRT before 10.12, vidm_rt.build.STRONGLY_TYPED_FROM) uses
# these; TensorRT 11 removed most of them.
WEAK = {
    "": ["LayerType"],
    "BuilderFlag": ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"],
    "LayerType": ["CAST", "IDENTITY", "CONSTANT", "SHAPE"],
    "INetworkDefinition": ["num_layers", "get_layer"],
    "ILayer": ["type", "num_outputs", "get_output", "precision", "set_output_type"],
}
# Keyword arguments vidm-rt passes, which must be the bindings' parameter names.
KEYWORDS = {("IBuilderConfig", "set_timing_cache"): ["ignore_mismatch"],
            ("IExecutionContext", "set_device_memory"): ["size"],
            ("ICudaEngine", "create_execution_context"): ["strategy"]}


def say(line: str) -> None:
    print(f"api_check: {line}", flush=True)


def module_names() -> set[str]:
    """The module-level `trt.X` names the callers use."""
    names: set[str] = set()
    for caller in TENSORRT_CALLERS:
        names |= set(re.findall(r"\btrt\.([A-Za-z_][A-Za-z0-9_]*)", (ROOT / caller).read_text()))
    return names


def check_tensorrt() -> int:
    import tensorrt_bindings as trt

    from vidm_rt.build import strongly_typed

    version = trt.__version__
    weak = not strongly_typed(version)
    listed = set(USED[""]) | set(WEAK[""])
    unlisted = sorted(module_names() - listed)
    missing = [f"trt.{n} (used in {', '.join(TENSORRT_CALLERS)}, not in USED)" for n in unlisted]
    checked = 0
    for table in (USED, WEAK) if weak else (USED,):
        for owner, names in table.items():
            scope = trt if owner == "" else getattr(trt, owner, None)
            if scope is None:
                missing.append(f"trt.{owner}")
                continue
            for name in names:
                checked += 1
                if not hasattr(scope, name):
                    missing.append(f"trt.{owner + '.' if owner else ''}{name}")
    for (owner, method), keywords in KEYWORDS.items():
        doc = getattr(getattr(trt, owner), method).__doc__ or ""
        for keyword in keywords:
            checked += 1
            if not re.search(rf"\b{keyword}\b", doc):
                missing.append(f"trt.{owner}.{method}({keyword}=...)")
    path = ("weakly typed build included" if weak
            else "strongly typed: the weak-typing API is unused")
    if missing:
        say(f"TensorRT {version} bindings: FAIL, missing {', '.join(missing)}")
        return 1
    say(f"TensorRT {version} bindings: ok ({checked} names and keywords; {path})")
    return 0


def check_nvrtc() -> int:
    from cuda.bindings import nvrtc

    from vidm_rt.runtime.device_noise import compile_kernel, cuda_call

    major, minor = cuda_call(nvrtc.nvrtcVersion(), "nvrtcVersion")
    supported = list(cuda_call(nvrtc.nvrtcGetSupportedArchs(), "nvrtcGetSupportedArchs"))
    parts = []
    for cc in ((8, 7), (9, 0)):
        image = compile_kernel(*cc)
        if not image.startswith(b"\x7fELF"):
            say(f"NVRTC {major}.{minor}: FAIL, sm_{cc[0]}{cc[1]} gave no cubin")
            return 1
        parts.append(f"sm_{cc[0]}{cc[1]} cubin {len(image)} B")
    # A GPU newer than this NVRTC: the PTX fallback of the newest architecture it knows.
    newer = max(supported) // 10 + 1
    image = compile_kernel(newer, 0)
    if b".target" not in image:
        say(f"NVRTC {major}.{minor}: FAIL, compute capability {newer}.0 gave no PTX")
        return 1
    parts.append(f"cc {newer}.0 -> compute_{max(supported)} PTX")
    say(f"NVRTC {major}.{minor} noise kernel: ok ({', '.join(parts)})")
    return 0


def cuda_major(name: str, version: str) -> int | None:
    """The CUDA major a resolved package is built for, where its name or version says it."""
    suffix = re.search(r"[-_]cu(\d+)(?:[-_]|$)", name)
    if suffix:
        return int(suffix.group(1))
    if name in ("cuda-python", "cuda-bindings") or re.fullmatch(
            r"nvidia-(cuda-[a-z]+|nvjitlink|cublas)", name):
        return int(version.split(".")[0])
    return None


EXPECTED = {"gpu": (12, 10), "gpu-cu13": (13, 11), "jetson": (12, None),
            "jetson-cu13": (13, None)}  # extra -> (CUDA major, TensorRT major or None)


def resolved(*reports: str) -> dict[str, str]:
    """name -> version of what pip's --report files would install."""
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
            for report in reports for i in json.loads(Path(report).read_text())["install"]}


def check_extras(extra: str, *reports: str) -> int:
    cuda, trt_major = EXPECTED[extra]
    names = resolved(*reports)
    wrong = sorted(f"{n} {v} (CUDA {cuda_major(n, v)})" for n, v in names.items()
                   if cuda_major(n, v) not in (None, cuda))
    tensorrt = f"tensorrt-cu{cuda}"
    needed = ["cuda-bindings"] + (["onnxruntime-gpu", tensorrt] if trt_major else [])
    absent = [n for n in needed if n not in names]
    if trt_major and tensorrt in names and int(names[tensorrt].split(".")[0]) != trt_major:
        wrong.append(f"{tensorrt} {names[tensorrt]} (expected TensorRT {trt_major}.x)")
    if trt_major and not any(re.fullmatch(r"nvidia-cuda-nvrtc(-cu\d+)?", n) for n in names):
        absent.append("an NVRTC library (nvidia-cuda-nvrtc)")
    if wrong or absent:
        say(f"extra [{extra}]: FAIL, " + "; ".join(
            ([f"not CUDA {cuda}: {', '.join(wrong)}"] if wrong else [])
            + ([f"missing {', '.join(absent)}"] if absent else [])))
        return 1
    shown = [f"{n} {names[n]}" for n in sorted(names)
             if n.startswith(("tensorrt", "cuda-bindings", "onnxruntime", "nvidia-cuda-nvrtc",
                              "nvidia-cuda-runtime"))]
    say(f"extra [{extra}]: ok, one CUDA major ({cuda}): {', '.join(shown)}")
    return 0


def check_docs() -> int:
    """docs/gpu.md's install table names every GPU extra of pyproject.toml, and no other."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    gpu = {e for e in extras if e in EXPECTED}
    named = set(re.findall(r"vidm-rt\[([a-z0-9-]+)\]'` \|", (ROOT / "docs/gpu.md").read_text()))
    if gpu != set(EXPECTED) or named != gpu:
        say(f"install matrix: FAIL, pyproject's GPU extras {sorted(gpu)}, docs/gpu.md's table "
            f"{sorted(named)}, api_check's {sorted(EXPECTED)}")
        return 1
    say(f"install matrix: ok, docs/gpu.md's table = pyproject's extras ({', '.join(sorted(gpu))})")
    return 0


def extra_requirements(extra: str) -> list[str]:
    """The requirements of an extra in pyproject.toml (for api_check.sh)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][extra])


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    command, args = argv[0], argv[1:]
    if command == "tensorrt":
        return check_tensorrt()
    if command == "nvrtc":
        return check_nvrtc()
    if command == "extras":
        return check_extras(args[0], *args[1:])
    if command == "docs":
        return check_docs()
    if command == "requirements":
        print("\n".join(extra_requirements(args[0])))
        return 0
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
