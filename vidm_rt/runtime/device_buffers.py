"""The schedule's buffers in device memory, driven on one CUDA stream (numpy + CudaMemory only).

Shared by the GPU backends that manage their own memory (TensorRT, ONNX Runtime on CUDA). Every
buffer is one device allocation; `host` buffers (plan.py) also get a pinned staging buffer, or
with zero-copy live in mapped host memory and need no copy. Only those are host-visible: the
per-step buffers (x, x0, model_out, noise, flow) never leave the device.

Every buffer starts zero-filled (see __init__).

Host synchronisation: a read waits for the stream (that is when a frame is handed to the
caller); a write waits only when the host memory it overwrites may still be in use by the GPU:
its own staging buffer still uploading, or, with zero-copy, any work enqueued since the last
wait (the GPU reads mapped memory directly). The generator writes a frame's inputs right after
the previous frame's read, so a frame costs one synchronisation, and none per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .bindings import DeviceLayout, device_nbytes, row_pitch
from .cuda_memory import CudaMemory
from .plan import BufferSpec


def host_view(raw: np.ndarray, spec: BufferSpec) -> np.ndarray:
    """The typed (rows padded like the device's) view of a buffer's host memory."""
    typed = raw[:device_nbytes(spec)].view(spec.dtype)
    if not spec.table:
        return typed.reshape(spec.shape)
    pitch = row_pitch(spec) // np.dtype(spec.dtype).itemsize
    return typed.reshape(spec.shape[0], pitch)[:, :math.prod(spec.row_shape)].reshape(spec.shape)


class DeviceBuffers:
    """Allocates the schedule's buffers on `cuda` and moves data on `stream`; the memory is
    owned by `cuda` and freed by its close()."""

    def __init__(self, cuda: CudaMemory, stream: int, specs: list[BufferSpec],
                 zero_copy: bool = False) -> None:
        self.cuda, self.stream, self.zero_copy = cuda, stream, zero_copy
        addresses: dict[str, int] = {}
        # name -> (raw staging or mapped memory, its typed view)
        self.host: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for spec in specs:
            nbytes = device_nbytes(spec)
            if spec.host:
                buf = cuda.host_alloc(nbytes, mapped=zero_copy)
                self.host[spec.name] = (buf.array, host_view(buf.array, spec))
                if zero_copy:
                    addresses[spec.name] = buf.device_pointer
                    continue
            addresses[spec.name] = cuda.malloc(nbytes)
        self.layout = DeviceLayout(specs, addresses)
        self.busy = False                # work enqueued since the last synchronisation
        self._uploading: set[str] = set()  # staging buffers an enqueued copy still reads
        # cudaMalloc and cudaHostAlloc promise nothing about the contents (freed memory comes
        # back with its old bytes), and some buffers are read before anything writes them: the
        # update reads `noise` on every step, scaled by 0 on the steps without noise (DDIM,
        # DPM-Solver++ and every last step), and 0 * NaN is NaN. Zero everything once.
        for name in addresses:
            cuda.memset_async(addresses[name], device_nbytes(self.layout.specs[name]), stream)
        self.synchronize()

    def _host(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.host:
            raise KeyError(f"{name} is a device-only buffer of the schedule")
        return self.host[name]

    def write(self, name: str, value: np.ndarray) -> None:
        raw, view = self._host(name)
        if name in self._uploading or (self.zero_copy and self.busy):
            self.synchronize()
        np.copyto(view, np.asarray(value).reshape(view.shape), casting="same_kind")
        if not self.zero_copy:
            self.cuda.copy_async(self.layout.addresses[name], raw.ctypes.data,
                                 device_nbytes(self.layout.specs[name]), self.stream)
            self._uploading.add(name)
            self.busy = True

    def read(self, name: str) -> np.ndarray:
        raw, view = self._host(name)
        if not self.zero_copy:
            self.cuda.copy_async(raw.ctypes.data, self.layout.addresses[name],
                                 device_nbytes(self.layout.specs[name]), self.stream)
        self.synchronize()
        return view.copy()

    def synchronize(self) -> None:
        self.cuda.synchronize(self.stream)
        self.busy = False
        self._uploading.clear()

    def zero(self, name: str) -> Callable[[], None]:
        address, nbytes = self.layout.addresses[name], self.layout.specs[name].nbytes

        def run() -> None:
            self.cuda.memset_async(address, nbytes, self.stream)
            self.busy = True

        return run

    def copy(self, dst: str, src: str) -> Callable[[], None]:
        """A device-to-device copy on the stream (the buffers have the same shape)."""
        d, s = self.layout.addresses[dst], self.layout.addresses[src]
        nbytes = self.layout.specs[dst].nbytes

        def run() -> None:
            self.cuda.copy_async(d, s, nbytes, self.stream)
            self.busy = True

        return run

    def noise(self, kernel: Any, name: str, step: int) -> Callable[[], None]:
        """The noise kernel writing `name` for `step` at the address in `noise_base`."""
        spec = self.layout.specs[name]
        out, base = self.layout.addresses[name], self.layout.addresses["noise_base"]
        batch, per_video = spec.shape[0], math.prod(spec.shape[1:])

        def run() -> None:
            kernel.launch(out, base, step, batch, per_video, self.stream)
            self.busy = True

        return run

    def capture(self, launches: list[Callable[[], None]]) -> Callable[[], None]:
        """The launches captured once as a CUDA graph; the returned callable replays it. Work
        already enqueued (this frame's uploads) stays outside the graph and runs first."""
        graph = self.cuda.capture(self.stream, launches)

        def replay() -> None:
            self.cuda.launch_graph(graph, self.stream)
            self.busy = True

        return replay
