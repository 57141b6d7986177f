"""The small CUDA interface the GPU backends need, over cuda-python (`cuda.bindings.runtime`).

Device buffers allocated once (cudaMalloc), pinned host buffers (cudaMallocHost) for uploads and
downloads, mapped zero-copy host memory (cudaHostAlloc(cudaHostAllocMapped) +
cudaHostGetDevicePointer) for Jetson's shared DRAM, asynchronous copies and memsets on one
non-blocking stream, and CUDA-graph capture of a sequence of launches (cudaStreamBeginCapture ..
cudaStreamEndCapture, cudaGraphInstantiate, cudaGraphLaunch). Copies use cudaMemcpyDefault:
every platform TensorRT 10 supports (64-bit, unified addressing) infers the direction.

Process-wide CUDA state is left alone: no cudaSetDeviceFlags. On a unified-addressing device
(every one TensorRT 10 runs on, Jetson included) cudaHostAllocMapped memory is mapped without
the cudaDeviceMapHost flag, and its device alias is the host address.

Lifetime: everything allocated, created or captured here is released by close(), once, in the
order CUDA needs: every stream synchronised, captured graphs destroyed, device and host memory
freed, streams destroyed. release_graphs() does the first two alone, so that an owner can drop
what the graphs launch (TensorRT contexts) before the memory goes.

Everything is addressed by integer pointers, so the backends never see cuda-python types, and
the CPU tests substitute a recording fake with the same methods (tests/fake_gpu.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .device_noise import CUDA_PYTHON_MISSING, cuda_call, status_code
from .lifetime import Closing


@dataclass
class HostBuffer:
    array: np.ndarray            # uint8 view of the host memory
    device_pointer: int | None   # the device alias of mapped memory; None for pinned staging


class CudaMemory(Protocol):
    device_name: str
    compute_capability: str   # "8.7"

    def make_current(self) -> None: ...
    def malloc(self, nbytes: int) -> int: ...
    def host_alloc(self, nbytes: int, mapped: bool) -> HostBuffer: ...
    def create_stream(self) -> int: ...
    def copy_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def memset_async(self, dst: int, nbytes: int, stream: int) -> None: ...
    def synchronize(self, stream: int) -> None: ...
    def capture(self, stream: int, launches: Sequence[Callable[[], None]]) -> Any: ...
    def launch_graph(self, graph: Any, stream: int) -> None: ...
    def noise_kernel(self) -> Any: ...
    def release_graphs(self) -> None: ...
    def close(self) -> None: ...


def host_pointer(buffer: HostBuffer) -> int:
    return buffer.array.ctypes.data


class CudaBindingsMemory(Closing):
    """CudaMemory over cuda.bindings.runtime; frees everything it allocated on close()."""

    def __init__(self, device: int = 0) -> None:
        from cuda.bindings import runtime

        self._rt = runtime
        self._device: list[int] = []
        self._host: list[int] = []
        self._streams: dict[int, Any] = {}
        self._graphs: list[tuple[Any, Any]] = []
        self.device = device
        self.make_current()
        props = cuda_call(runtime.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        name = props.name
        self.device_name = (name.decode() if isinstance(name, bytes) else str(name)).strip("\0 ")
        self.compute_capability = f"{props.major}.{props.minor}"

    def make_current(self) -> None:
        """cudaSetDevice: the current device is per host thread (not process-wide state), so
        every thread that launches on this device calls this first."""
        cuda_call(self._rt.cudaSetDevice(self.device), f"cudaSetDevice({self.device})")

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
        # Owned from here on: a failed device-pointer query below still frees it on close().
        self._host.append(ptr)
        device = (int(cuda_call(rt.cudaHostGetDevicePointer(ptr, 0), "cudaHostGetDevicePointer"))
                  if mapped else None)
        array = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))
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
        """The launches recorded as one instantiated graph; raises (and keeps nothing) if the
        capture or the instantiation fails, leaving the stream usable for eager launches."""
        rt = self._rt
        cuda_call(rt.cudaStreamBeginCapture(
            stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
            "cudaStreamBeginCapture")
        try:
            for fn in launches:
                fn()
        except BaseException:
            # Leave capture mode whatever happened, and drop what was recorded.
            status, graph = rt.cudaStreamEndCapture(stream)
            if status_code(status) == 0 and graph is not None:
                rt.cudaGraphDestroy(graph)
            self._clear_error()
            raise
        try:
            graph = cuda_call(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        except RuntimeError:
            self._clear_error()
            raise
        try:
            exec_graph = cuda_call(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        except RuntimeError:
            rt.cudaGraphDestroy(graph)
            self._clear_error()
            raise
        self._graphs.append((graph, exec_graph))
        return exec_graph

    def _clear_error(self) -> None:
        # A failed capture leaves its error as the thread's last error, which the next
        # runtime call that checks it (TensorRT's, ONNX Runtime's, the eager fallback's) would
        # report as its own failure: read it, which resets it.
        self._rt.cudaGetLastError()

    def launch_graph(self, graph: Any, stream: int) -> None:
        cuda_call(self._rt.cudaGraphLaunch(graph, stream), "cudaGraphLaunch")

    def noise_kernel(self) -> Any:
        from .device_noise import load_noise_kernel

        return load_noise_kernel()

    def release_graphs(self) -> None:
        """Wait for every stream, then destroy the captured graphs (idempotent)."""
        rt = self._rt
        for stream in self._streams.values():
            rt.cudaStreamSynchronize(stream)
        graphs, self._graphs = self._graphs, []
        for graph, exec_graph in graphs:
            rt.cudaGraphExecDestroy(exec_graph)
            rt.cudaGraphDestroy(graph)

    def close(self) -> None:
        """Release everything, once: graphs, device memory, host memory, then the streams."""
        rt = self._rt
        self.release_graphs()
        device, self._device = self._device, []
        host, self._host = self._host, []
        streams, self._streams = self._streams, {}
        for ptr in device:
            rt.cudaFree(ptr)
        for ptr in host:
            rt.cudaFreeHost(ptr)
        for stream in streams.values():
            rt.cudaStreamDestroy(stream)


def open_device(device: int = 0) -> CudaMemory:
    """The CUDA memory interface for GPU `device`; a one-line error without cuda-python."""
    try:
        import cuda.bindings.runtime  # noqa: F401
    except ImportError:
        raise ValueError(CUDA_PYTHON_MISSING) from None
    return CudaBindingsMemory(device)
