"""The small CUDA interface the TensorRT backend needs, over cuda-python (`cuda.bindings.runtime`).

Device buffers allocated once (cudaMalloc), pinned host buffers (cudaMallocHost) for uploads and
downloads, mapped zero-copy host memory (cudaHostAlloc(cudaHostAllocMapped) +
cudaHostGetDevicePointer) for Jetson's shared DRAM, asynchronous copies and memsets on one
non-blocking stream, and CUDA-graph capture of a sequence of launches (cudaStreamBeginCapture ..
cudaStreamEndCapture, cudaGraphInstantiate, cudaGraphLaunch). Copies use cudaMemcpyDefault:
every platform TensorRT 10 supports (64-bit, unified addressing) infers the direction.

Everything is addressed by integer pointers, so the TensorRT backend never sees cuda-python
types, and the CPU tests substitute a recording fake with the same methods (tests/fake_gpu.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .device_noise import CUDA_PYTHON_MISSING, cuda_call


@dataclass
class HostBuffer:
    array: np.ndarray            # uint8 view of the host memory
    device_pointer: int | None   # the device alias of mapped memory; None for pinned staging


class CudaMemory(Protocol):
    device_name: str
    compute_capability: str   # "8.7"

    def malloc(self, nbytes: int) -> int: ...
    def host_alloc(self, nbytes: int, mapped: bool) -> HostBuffer: ...
    def create_stream(self) -> int: ...
    def copy_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def memset_async(self, dst: int, nbytes: int, stream: int) -> None: ...
    def synchronize(self, stream: int) -> None: ...
    def capture(self, stream: int, launches: Sequence[Callable[[], None]]) -> Any: ...
    def launch_graph(self, graph: Any, stream: int) -> None: ...
    def noise_kernel(self) -> Any: ...


def host_pointer(buffer: HostBuffer) -> int:
    return buffer.array.ctypes.data


class CudaBindingsMemory:
    """CudaMemory over cuda.bindings.runtime; frees everything it allocated on close()."""

    def __init__(self, device: int = 0) -> None:
        from cuda.bindings import runtime

        self._rt = runtime
        cuda_call(runtime.cudaSetDevice(device), f"cudaSetDevice({device})")
        props = cuda_call(runtime.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        name = props.name
        self.device_name = (name.decode() if isinstance(name, bytes) else str(name)).strip("\0 ")
        self.compute_capability = f"{props.major}.{props.minor}"
        self._device: list[int] = []
        self._host: list[int] = []
        self._streams: dict[int, Any] = {}
        self._graphs: list[tuple[Any, Any]] = []

    def malloc(self, nbytes: int) -> int:
        ptr = int(cuda_call(self._rt.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))
        self._device.append(ptr)
        return ptr

    def host_alloc(self, nbytes: int, mapped: bool) -> HostBuffer:
        rt = self._rt
        if mapped:
            ptr = int(cuda_call(rt.cudaHostAlloc(nbytes, rt.cudaHostAllocMapped),
                                f"cudaHostAlloc({nbytes}, mapped)"))
        else:
            ptr = int(cuda_call(rt.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        self._host.append(ptr)
        array = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))
        device = (int(cuda_call(rt.cudaHostGetDevicePointer(ptr, 0), "cudaHostGetDevicePointer"))
                  if mapped else None)
        return HostBuffer(array, device)

    def create_stream(self) -> int:
        # Non-blocking, as in the C API: while a blocking stream captures, the legacy default
        # stream is unusable for every library of the process (cudaStreamIsCapturing docs).
        rt = self._rt
        stream = cuda_call(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking),
                           "cudaStreamCreateWithFlags")
        self._streams[int(stream)] = stream
        return int(stream)

    def copy_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        cuda_call(self._rt.cudaMemcpyAsync(dst, src, nbytes,
                                           self._rt.cudaMemcpyKind.cudaMemcpyDefault, stream),
                  "cudaMemcpyAsync")

    def memset_async(self, dst: int, nbytes: int, stream: int) -> None:
        cuda_call(self._rt.cudaMemsetAsync(dst, 0, nbytes, stream), "cudaMemsetAsync")

    def synchronize(self, stream: int) -> None:
        cuda_call(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def capture(self, stream: int, launches: Sequence[Callable[[], None]]) -> Any:
        rt = self._rt
        cuda_call(rt.cudaStreamBeginCapture(
            stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
            "cudaStreamBeginCapture")
        try:
            for fn in launches:
                fn()
        finally:
            graph = cuda_call(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        exec_graph = cuda_call(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        self._graphs.append((graph, exec_graph))
        return exec_graph

    def launch_graph(self, graph: Any, stream: int) -> None:
        cuda_call(self._rt.cudaGraphLaunch(graph, stream), "cudaGraphLaunch")

    def noise_kernel(self) -> Any:
        from .device_noise import load_noise_kernel

        return load_noise_kernel()

    def close(self) -> None:
        rt = self._rt
        for stream in self._streams.values():
            rt.cudaStreamSynchronize(stream)
        for graph, exec_graph in self._graphs:
            rt.cudaGraphExecDestroy(exec_graph)
            rt.cudaGraphDestroy(graph)
        for ptr in self._device:
            rt.cudaFree(ptr)
        for ptr in self._host:
            rt.cudaFreeHost(ptr)
        for stream in self._streams.values():
            rt.cudaStreamDestroy(stream)
        self._graphs, self._device, self._host, self._streams = [], [], [], {}


def open_device(device: int = 0) -> CudaMemory:
    """The CUDA memory interface for GPU `device`; a one-line error without cuda-python."""
    try:
        import cuda.bindings.runtime  # noqa: F401
    except ImportError:
        raise ValueError(CUDA_PYTHON_MISSING) from None
    return CudaBindingsMemory(device)
