"""The noise of `vidm_rt.noise` on the GPU: vidm_rt/kernels/noise_kernel.cu compiled with NVRTC.

The kernel file (shared with the C API, the one CUDA source of the noise) defines

    extern "C" __global__ void vidm_gaussian_noise(float* out, const unsigned int* base,
        unsigned int step, unsigned int batch, unsigned int per_video);

    out[b * per_video + e] = gaussian(seed_b, video = base[4b], frame = base[4b + 1], step)[e]
    with seed_b = base[4b + 2] | base[4b + 3] << 32

`base` ((batch, 4) uint32, row b = [video, frame, key low, key high]; `frame.NoiseAddress`) lives
in device memory, so a captured CUDA graph reads the current frames and seeds at replay time: one
capture serves every frame and every seed, and each row may serve another request.
It is compiled at run time with cuda-python's NVRTC bindings (`cuda.bindings.nvrtc`) to a cubin
for the current GPU (PTX for the driver to finish where NVRTC is older than the GPU), with
--fmad=false (no contracted multiply-adds: vidm_rt.noise's porting rules), and launched with the
driver API on the caller's stream (TensorRT's, or torch's).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"
KERNEL_FILE = KERNEL_DIR / "noise_kernel.cu"
KERNEL_NAME = b"vidm_gaussian_noise"
NVRTC_OPTIONS = ("--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false")
THREADS = 256
CUDA_PYTHON_MISSING = ("device noise needs cuda-python (`cuda.bindings`): pip install "
                       "'vidm-rt[gpu]' (CUDA 12), 'vidm-rt[gpu-cu13]' (CUDA 13) or, on a "
                       "Jetson, 'vidm-rt[jetson]' (see docs/gpu.md)")


def status_code(status: Any) -> int:
    """The number of a cuda-python status enum (0 = success for the runtime, driver, NVRTC)."""
    return int(getattr(status, "value", status))


def cuda_call(result: tuple, what: str) -> Any:
    """cuda-python calls return (status, *values): raise on a failed status, return the values."""
    status, *values = result
    if status_code(status) != 0:
        raise RuntimeError(f"{what} failed: {status!r}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def nvrtc_target(major: int, minor: int, supported: list[int]) -> str:
    """The --gpu-architecture for a GPU of compute capability major.minor, given the
    architectures this NVRTC knows (nvrtcGetSupportedArchs): its own `sm_XY` (a cubin) when
    NVRTC knows it, else PTX for the newest `compute_XY` NVRTC knows below it, which the driver
    compiles for the GPU when loading it (an NVRTC older than the GPU, e.g. 12.6 on a newer GPU)."""
    cc = major * 10 + minor
    if cc in supported:
        return f"sm_{cc}"
    older = [arch for arch in supported if arch < cc]
    if not older:
        raise RuntimeError(f"this NVRTC compiles for {supported} only, not for compute "
                           f"capability {major}.{minor}: install an NVRTC of your CUDA version")
    return f"compute_{max(older)}"


def nvrtc_options(target: str) -> list[bytes]:
    return [f"--gpu-architecture={target}".encode(), *(o.encode() for o in NVRTC_OPTIONS),
            f"--include-path={KERNEL_DIR}".encode()]


def compile_kernel(major: int, minor: int) -> bytes:
    """noise_kernel.cu -> a cubin for compute capability major.minor, or PTX (NUL-terminated)
    where this NVRTC is older than the GPU (`nvrtc_target`); cuModuleLoadData takes either."""
    from cuda.bindings import nvrtc

    if not KERNEL_FILE.is_file():
        raise ValueError(f"{KERNEL_FILE} is missing from this installation: reinstall vidm-rt")
    target = nvrtc_target(major, minor,
                          list(cuda_call(nvrtc.nvrtcGetSupportedArchs(), "nvrtcGetSupportedArchs")))
    source, name = KERNEL_FILE.read_bytes(), KERNEL_FILE.name.encode()
    program = cuda_call(nvrtc.nvrtcCreateProgram(source, name, 0, [], []), "nvrtcCreateProgram")
    try:
        options = nvrtc_options(target)
        status, = nvrtc.nvrtcCompileProgram(program, len(options), options)
        if status_code(status) != 0:
            size = cuda_call(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
            log = b" " * size
            cuda_call(nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
            raise RuntimeError(f"NVRTC could not compile {KERNEL_FILE.name} for {target}: "
                               f"{log.decode(errors='replace').strip()}")
        if target.startswith("sm_"):
            size = cuda_call(nvrtc.nvrtcGetCUBINSize(program), "nvrtcGetCUBINSize")
            image = b" " * size
            cuda_call(nvrtc.nvrtcGetCUBIN(program, image), "nvrtcGetCUBIN")
        else:
            size = cuda_call(nvrtc.nvrtcGetPTXSize(program), "nvrtcGetPTXSize")
            image = b" " * size
            cuda_call(nvrtc.nvrtcGetPTX(program, image), "nvrtcGetPTX")
        return image
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def launch_config(batch: int, per_video: int) -> tuple[int, int]:
    """(blocks, threads per block), 1-D: one thread per Philox block of 4 elements of a video
    (the kernel loops grid-stride over them, so this is a size, not a requirement)."""
    total = batch * ((per_video + 3) // 4)
    return (total + THREADS - 1) // THREADS, THREADS


class NoiseKernel:
    """The compiled kernel in the current CUDA context; `launch` enqueues one noise tensor."""

    def __init__(self, device: int) -> None:
        from cuda.bindings import driver, runtime

        self._driver = driver
        cuda_call(runtime.cudaFree(0), "cudaFree(0)")  # makes the primary context current
        props = cuda_call(runtime.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        # The loader takes the image's address.
        image = np.frombuffer(compile_kernel(props.major, props.minor), np.uint8)
        self._module = cuda_call(driver.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
        self._function = cuda_call(driver.cuModuleGetFunction(self._module, KERNEL_NAME),
                                "cuModuleGetFunction")

    def launch(self, out: int, base: int, step: int, batch: int, per_video: int,
               stream: int) -> None:
        """Enqueue `out` <- noise(row b at base[4b:4b + 4] = video, frame, key, step) on
        `stream`; `base` is the device address of the (batch, 4) noise addresses."""
        args = [np.array([out], np.uint64), np.array([base], np.uint64),
                np.array([step], np.uint32), np.array([batch], np.uint32),
                np.array([per_video], np.uint32)]
        pointers = np.array([a.ctypes.data for a in args], np.uint64)
        blocks, threads = launch_config(batch, per_video)
        cuda_call(self._driver.cuLaunchKernel(self._function, blocks, 1, 1, threads, 1, 1, 0,
                                              stream, pointers.ctypes.data, 0),
                  "cuLaunchKernel(vidm_gaussian_noise)")


@cache
def _kernel(device: int) -> NoiseKernel:
    # A loaded module belongs to one device's context: one compiled kernel per device.
    return NoiseKernel(device)


def load_noise_kernel(required: bool = True) -> NoiseKernel | None:
    """The kernel for the current device, compiled once per device and process; None without
    cuda-python when not `required`."""
    try:
        import cuda.bindings.nvrtc  # noqa: F401
        from cuda.bindings import runtime
    except ImportError:
        if required:
            raise ValueError(CUDA_PYTHON_MISSING) from None
        return None
    return _kernel(int(cuda_call(runtime.cudaGetDevice(), "cudaGetDevice")))
