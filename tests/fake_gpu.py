"""A fake CUDA device, so CPU tests run the GPU paths end to end (TensorRT: tests/fake_tensorrt.py;
ONNX Runtime's CUDA provider: tests/fake_ort_cuda.py).

FakeCuda implements vidm_rt.runtime.cuda_memory.CudaMemory over numpy: "device" pointers are real
addresses of numpy arrays (256-byte aligned), stream work runs at once unless the stream is
capturing, in which case it is recorded and a "graph launch" replays the recording. Every call
is logged in `calls` (copies as memcpy_htod, memcpy_dtoh or memcpy_dtod, pinned staging being
the host side), every stream that work was enqueued on in `streams_used`. close() frees every
allocation (counted in `frees`); memory used after that fails. `capture_fails=True` makes every
capture fail as CUDA does when a capture is invalidated. The noise kernel fills its output with
vidm_rt.noise, reading `base` (per row: [video, frame, key low, key high]) from memory
when it runs (as the CUDA kernel does at replay).

It is as strict as CUDA where CUDA gives no error but wrong results, and stricter where the
runtime's design forbids something:
- new memory (device, pinned, mapped) is filled with 0xFF bytes, NaN as float32: cudaMalloc
  promises nothing about contents, and memory freed earlier comes back with its old bytes;
- while a stream captures, allocation, synchronisation and host<->device copies raise;
- the current device is per host thread (`current_device`): a new thread starts on device 0,
  `make_current()` is cudaSetDevice, `open(index)` is open_device(index) (CudaBindingsMemory
  sets the device on the thread that opens it); every allocation, stream operation and launch
  on a thread whose current device is another raises, as a launch into the wrong context does.

FakeCudaRuntime (tests/fake_cuda_runtime.py) stands in for `cuda.bindings.runtime` under the real
CudaBindingsMemory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from vidm_rt import noise
from vidm_rt.runtime.cuda_memory import HostBuffer

UNINITIALISED = 0xFF   # every byte of new memory: NaN as float32

_thread = threading.local()


def current_device() -> int:
    """The calling thread's current device (0 on a thread that never set one, as in CUDA)."""
    return getattr(_thread, "device", 0)


class FakeCuda:
    device_name = "Fake GPU 8GB"
    compute_capability = "8.7"

    def __init__(self, capture_fails: bool = False, device: int = 0) -> None:
        self.calls: list[str] = []
        self.capture_fails = capture_fails
        self.device = device
        self._allocations: list[np.ndarray] = []
        self._pinned: set[int] = set()       # addresses of pinned (not mapped) host memory
        self.frees: dict[int, int] = {}      # address -> times freed
        self._capturing: dict[int, list[Callable[[], None]] | None] = {}
        self.streams_used: set[int] = set()
        self.graphs: list[list] = []
        self.make_current()   # made on the thread that opens it, as CudaBindingsMemory is

    def open(self, index: int = 0) -> FakeCuda:
        """cuda_memory.open_device(index): this fake as GPU `index`, current on this thread."""
        self.device = index
        self.make_current()
        return self

    def make_current(self) -> None:
        _thread.device = self.device

    def _on_device(self, what: str) -> None:
        if current_device() != self.device:
            raise RuntimeError(f"{what}: device {current_device()} is current on this thread, "
                               f"the memory and streams are device {self.device}'s "
                               "(cudaErrorInvalidResourceHandle: call cudaSetDevice first)")

    def capturing(self, stream: int | None = None) -> bool:
        """`stream` (or, with None, any stream) is capturing."""
        streams = self._capturing if stream is None else {stream: self._capturing.get(stream)}
        return any(r is not None for r in streams.values())

    def _not_capturing(self, what: str) -> None:
        if self.capturing():
            raise RuntimeError(f"{what} during a stream capture: cudaErrorStreamCaptureUnsupported")

    # memory
    def _new(self, nbytes: int) -> np.ndarray:
        assert nbytes > 0, "cudaMalloc(0) returns no pointer"
        raw = np.full(nbytes + 256, UNINITIALISED, np.uint8)
        offset = -raw.ctypes.data % 256
        arr = raw[offset:offset + nbytes]
        self._allocations.append(arr)
        self.frees[arr.ctypes.data] = 0
        return arr

    def allocation(self, address: int) -> np.ndarray:
        for arr in self._allocations:
            base = arr.ctypes.data
            if base <= address < base + arr.nbytes:
                return arr
        raise AssertionError(f"address {address:#x} is not in any live allocation")

    def resolve(self, address: int, nbytes: int) -> np.ndarray:
        arr = self.allocation(address)
        offset = address - arr.ctypes.data
        assert offset + nbytes <= arr.nbytes, f"{address:#x} (+{nbytes}) overruns its allocation"
        return arr[offset:offset + nbytes]

    def malloc(self, nbytes: int) -> int:
        self._on_device("cudaMalloc")
        self._not_capturing("cudaMalloc")
        self.calls.append("malloc")
        return self._new(nbytes).ctypes.data

    def host_alloc(self, nbytes: int, mapped: bool) -> HostBuffer:
        self._not_capturing("cudaHostAlloc")
        self.calls.append("host_alloc_mapped" if mapped else "host_alloc")
        arr = self._new(nbytes)
        if not mapped:
            self._pinned.add(arr.ctypes.data)
        return HostBuffer(arr, arr.ctypes.data if mapped else None)

    # streams
    def create_stream(self) -> int:
        self._on_device("cudaStreamCreate")
        self.calls.append("create_stream")
        handle = 1000 + len(self._capturing)
        self._capturing[handle] = None
        return handle

    def enqueue(self, stream: int, what: str, fn: Callable[[], None]) -> None:
        assert stream in self._capturing, f"{what} on an unknown stream {stream}"
        self._on_device(what)
        self.calls.append(what)
        self.streams_used.add(stream)
        recording = self._capturing[stream]
        if recording is None:
            fn()
        else:
            recording.append(fn)

    def _side(self, address: int) -> str:
        return "h" if self.allocation(address).ctypes.data in self._pinned else "d"

    def copy_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        d, s = self.resolve(dst, nbytes), self.resolve(src, nbytes)
        kind = f"memcpy_{self._side(src)}to{self._side(dst)}"
        if kind != "memcpy_dtod":
            self._not_capturing(f"a host copy ({kind})")
        self.enqueue(stream, kind, lambda: np.copyto(d, s))

    def memset_async(self, dst: int, nbytes: int, stream: int) -> None:
        d = self.resolve(dst, nbytes)
        self.enqueue(stream, "memset", lambda: d.fill(0))

    def synchronize(self, stream: int) -> None:
        self._on_device("cudaStreamSynchronize")
        self._not_capturing("cudaStreamSynchronize")
        self.calls.append("sync")

    def capture(self, stream: int, launches: Sequence[Callable[[], None]]) -> list:
        self._on_device("cudaStreamBeginCapture")
        self.calls.append("capture_begin")
        self._capturing[stream] = []
        try:
            for fn in launches:
                fn()
        finally:
            recorded, self._capturing[stream] = self._capturing[stream], None
            self.calls.append("capture_end")
        if self.capture_fails:
            raise RuntimeError("cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated")
        self.graphs.append(recorded)
        return recorded

    def launch_graph(self, graph: list, stream: int) -> None:
        assert any(graph is g for g in self.graphs), "launch of a destroyed graph"
        self._on_device("cudaGraphLaunch")
        self.calls.append("graph_launch")
        self.streams_used.add(stream)
        for fn in graph:
            fn()

    def noise_kernel(self) -> FakeNoiseKernel:
        return FakeNoiseKernel(self)

    def release_graphs(self) -> None:
        for stream in self._capturing:
            self.synchronize(stream)
        self.calls.append("release_graphs")
        self.graphs.clear()

    def close(self) -> None:
        self.release_graphs()
        self.calls.append("close")
        for arr in self._allocations:
            self.frees[arr.ctypes.data] += 1
        self._allocations.clear()
        self._capturing.clear()


class FakeNoiseKernel:
    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda

    def launch(self, out: int, base: int, step: int, batch: int, per_video: int,
               stream: int) -> None:
        dst = self.cuda.resolve(out, batch * per_video * 4).view(np.float32)
        rows = self.cuda.resolve(base, batch * 16).view(np.uint32).reshape(batch, 4)

        def run() -> None:
            seeds = [int(lo) | int(hi) << 32 for lo, hi in rows[:, 2:]]
            dst[:] = noise.gaussian_slots(seeds, rows[:, 0], rows[:, 1], step, (per_video,)).ravel()

        self.cuda.enqueue(stream, "noise_kernel", run)
