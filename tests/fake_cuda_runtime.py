"""A recording stand-in for `cuda.bindings.runtime`, to test CudaBindingsMemory's lifetimes.

Every function returns cuda-python's (status, *values) tuple and is logged in `calls` as
(name, handle) pairs. Device pointers, streams and graphs are fake integers (CudaBindingsMemory
never dereferences them); host allocations are real numpy memory, since it views them. `fail`
names functions that return an error status instead; like CUDA, a failed call also becomes the
thread's last error (`error`), which cudaGetLastError returns and resets. The current device is
per host thread (`device_of_this_thread`), set by cudaSetDevice. There is deliberately no
cudaSetDeviceFlags: calling it would raise AttributeError.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numpy as np

ERROR = 1


class FakeCudaRuntime(types.ModuleType):
    cudaHostAllocMapped = 2
    cudaStreamNonBlocking = 1
    cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyDefault=4)
    cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        super().__init__("cuda.bindings.runtime")
        self.fail = set(fail)
        self.calls: list[tuple[str, int | None]] = []
        self.host: dict[int, np.ndarray] = {}
        self._next = 0x7000_0000
        self.error = 0
        self._thread = threading.local()

    def device_of_this_thread(self) -> int:
        return getattr(self._thread, "device", 0)

    def _handle(self) -> int:
        self._next += 0x1000
        return self._next

    def _result(self, name: str, value: Any = None, handle: int | None = None) -> tuple:
        self.calls.append((name, handle))
        if name in self.fail:
            self.error = ERROR
            return (ERROR, None) if value is not None else (ERROR,)
        return (0, value) if value is not None else (0,)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)

    def handles(self, name: str) -> list[int | None]:
        return [h for n, h in self.calls if n == name]

    def cudaSetDevice(self, device: int) -> tuple:
        self._thread.device = device
        return self._result("cudaSetDevice", handle=device)

    def cudaGetLastError(self) -> tuple:
        error, self.error = self.error, 0
        self.calls.append(("cudaGetLastError", error))
        return (error,)

    def cudaGetDeviceProperties(self, device: int) -> tuple:
        return self._result("cudaGetDeviceProperties",
                            types.SimpleNamespace(name=b"Fake Orin\0", major=8, minor=7))

    def cudaMalloc(self, nbytes: int) -> tuple:
        ptr = self._handle()
        return self._result("cudaMalloc", ptr, ptr)

    def _host_alloc(self, name: str, nbytes: int) -> tuple:
        arr = np.zeros(nbytes, np.uint8)
        self.host[arr.ctypes.data] = arr
        return self._result(name, arr.ctypes.data, arr.ctypes.data)

    def cudaMallocHost(self, nbytes: int) -> tuple:
        return self._host_alloc("cudaMallocHost", nbytes)

    def cudaHostAlloc(self, nbytes: int, flags: int) -> tuple:
        assert flags == self.cudaHostAllocMapped
        return self._host_alloc("cudaHostAlloc", nbytes)

    def cudaHostGetDevicePointer(self, ptr: int, flags: int) -> tuple:
        return self._result("cudaHostGetDevicePointer", ptr, ptr)

    def cudaStreamCreateWithFlags(self, flags: int) -> tuple:
        assert flags == self.cudaStreamNonBlocking
        stream = self._handle()
        return self._result("cudaStreamCreateWithFlags", stream, stream)

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> tuple:
        return self._result("cudaMemcpyAsync", handle=stream)

    def cudaMemsetAsync(self, dst: int, value: int, nbytes: int, stream: int) -> tuple:
        return self._result("cudaMemsetAsync", handle=stream)

    def cudaStreamSynchronize(self, stream: int) -> tuple:
        return self._result("cudaStreamSynchronize", handle=stream)

    def cudaStreamBeginCapture(self, stream: int, mode: int) -> tuple:
        return self._result("cudaStreamBeginCapture", handle=stream)

    def cudaStreamEndCapture(self, stream: int) -> tuple:
        graph = self._handle()
        if "cudaStreamEndCapture" in self.fail:
            self.calls.append(("cudaStreamEndCapture", stream))
            self.error = ERROR
            return (ERROR, None)
        return self._result("cudaStreamEndCapture", graph, graph)

    def cudaGraphInstantiate(self, graph: int, flags: int) -> tuple:
        exec_graph = self._handle()
        return self._result("cudaGraphInstantiate", exec_graph, exec_graph)

    def cudaGraphLaunch(self, exec_graph: int, stream: int) -> tuple:
        return self._result("cudaGraphLaunch", handle=exec_graph)

    def cudaGraphExecDestroy(self, exec_graph: int) -> tuple:
        return self._result("cudaGraphExecDestroy", handle=exec_graph)

    def cudaGraphDestroy(self, graph: int) -> tuple:
        return self._result("cudaGraphDestroy", handle=graph)

    def cudaFree(self, ptr: int) -> tuple:
        return self._result("cudaFree", handle=ptr)

    def cudaFreeHost(self, ptr: int) -> tuple:
        return self._result("cudaFreeHost", handle=ptr)

    def cudaStreamDestroy(self, stream: int) -> tuple:
        return self._result("cudaStreamDestroy", handle=stream)


def install(monkeypatch: Any, **kwargs: Any) -> FakeCudaRuntime:
    """A FakeCudaRuntime(**kwargs) installed as cuda.bindings.runtime."""
    import sys

    rt = FakeCudaRuntime(**kwargs)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt
    cuda = types.ModuleType("cuda")
    cuda.bindings = bindings
    for name, module in (("cuda", cuda), ("cuda.bindings", bindings),
                         ("cuda.bindings.runtime", rt)):
        monkeypatch.setitem(sys.modules, name, module)
    return rt
