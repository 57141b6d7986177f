"""TensorRT backend: the engine directory's plans over device buffers allocated once.

One execution context per plan. Every buffer of the schedule is one device allocation (`host`
buffers get a pinned staging buffer as well, or with --zero-copy live in mapped host memory and
need no copy). A launch sets every I/O tensor's address from its binding table
(`bindings.py`) and enqueues with execute_async_v3 on the backend's one stream; the context is
shared by all launches of a graph (the addresses differ per step: x ping-pong, table rows), which
is fine because they are serialized on that stream and a captured CUDA graph keeps the addresses
of each enqueue. Noise comes from the CUDA kernel (`device_noise.py`), so `frame.py` captures a
whole frame once and replays it. Only named-tensor APIs (TensorRT 10.3 .. 11.x). Importing this
module imports neither torch nor TensorRT; TensorRT is imported when a backend is made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import ManifestError, check_tensorrt_target, require_kind
from .bindings import DeviceLayout, TensorInfo, binding_table, device_nbytes, row_pitch
from .plan import BufferSpec, Launch

TENSORRT_MISSING = ("TensorRT is not installed: pip install 'vidm-rt[gpu]' (or install TensorRT; "
                    "on Jetson it comes with JetPack)")


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        raise ValueError(TENSORRT_MISSING) from None
    return tensorrt


def device_index(device: str) -> int:
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise ValueError(f"the tensorrt backend runs on a GPU: use --device cuda[:N], not {device}")
    return int(match.group(1) or 0)


def host_view(raw: np.ndarray, spec: BufferSpec) -> np.ndarray:
    """The typed (rows padded like the device's) view of a buffer's host memory."""
    typed = raw[:device_nbytes(spec)].view(spec.dtype)
    if not spec.table:
        return typed.reshape(spec.shape)
    pitch = row_pitch(spec) // np.dtype(spec.dtype).itemsize
    return typed.reshape(spec.shape[0], pitch)[:, :math.prod(spec.row_shape)].reshape(spec.shape)


class TensorRTBackend:
    name = "tensorrt"
    device_noise = True
    can_capture = True

    def __init__(self, engine_dir: Path, manifest: dict[str, Any], device: str = "cuda",
                 options: Any = None) -> None:
        from . import cuda_memory

        require_kind(manifest, "tensorrt", engine_dir, self.name)
        built = manifest["tensorrt"]["precision"]
        precision = getattr(options, "precision", None)
        if precision not in (None, built):
            raise ValueError(f"{engine_dir} holds {built} engines: build {precision} ones with "
                             f"`vidm-rt build {manifest['tensorrt']['export']} --precision "
                             f"{precision}`")
        self.zero_copy = bool(getattr(options, "zero_copy", False))
        index = device_index(device)
        trt = import_tensorrt()
        self.cuda = cuda_memory.open_device(index)
        self.gpu_name = self.cuda.device_name
        check_tensorrt_target(manifest, engine_dir, trt.__version__, self.cuda.device_name,
                              self.cuda.compute_capability)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines: dict[str, Any] = {}
        self.contexts: dict[str, Any] = {}
        self.io: dict[str, dict[str, TensorInfo]] = {}
        for graph, spec in manifest["graphs"].items():
            engine = runtime.deserialize_cuda_engine((Path(engine_dir) / spec["file"]).read_bytes())
            if engine is None:
                raise ManifestError(f"{engine_dir}: TensorRT could not load {spec['file']}: run "
                                    f"`vidm-rt build {manifest['tensorrt']['export']}` again")
            io = {}
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                io[name] = TensorInfo(
                    name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                    tuple(engine.get_tensor_shape(name)),
                    np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name)
            context = engine.create_execution_context()
            for name, info in io.items():
                if info.is_input:  # static shapes: required only where a dimension is dynamic
                    context.set_input_shape(name, tuple(spec["inputs"][name]["shape"]))
            self.engines[graph], self.contexts[graph], self.io[graph] = engine, context, io
        self.stream = self.cuda.create_stream()
        self.kernel = self.cuda.noise_kernel()

    def graphs(self) -> set[str]:
        return set(self.engines)

    def allocate(self, specs: list[BufferSpec]) -> None:
        addresses: dict[str, int] = {}
        # name -> (raw staging or mapped memory, its typed view)
        self.host: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for spec in specs:
            nbytes = device_nbytes(spec)
            if spec.host:
                buf = self.cuda.host_alloc(nbytes, mapped=self.zero_copy)
                self.host[spec.name] = (buf.array, host_view(buf.array, spec))
                if self.zero_copy:
                    addresses[spec.name] = buf.device_pointer
                    continue
            addresses[spec.name] = self.cuda.malloc(nbytes)
        self.layout = DeviceLayout(specs, addresses)

    def _host(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.host:
            raise KeyError(f"{name} is a device-only buffer of the schedule")
        return self.host[name]

    def write(self, name: str, value: np.ndarray) -> None:
        raw, view = self._host(name)
        # The GPU may still read the staging (or mapped) memory from an earlier frame.
        self.cuda.synchronize(self.stream)
        np.copyto(view, np.asarray(value).reshape(view.shape), casting="same_kind")
        if not self.zero_copy:
            self.cuda.copy_async(self.layout.addresses[name], raw.ctypes.data,
                                 device_nbytes(self.layout.specs[name]), self.stream)

    def read(self, name: str) -> np.ndarray:
        raw, view = self._host(name)
        if not self.zero_copy:
            self.cuda.copy_async(raw.ctypes.data, self.layout.addresses[name],
                                 device_nbytes(self.layout.specs[name]), self.stream)
        self.cuda.synchronize(self.stream)
        return view.copy()

    def synchronize(self) -> None:
        self.cuda.synchronize(self.stream)

    def prepare(self, launch: Launch) -> Callable[[], None]:
        context = self.contexts[launch.graph]
        table = binding_table(launch, self.layout, self.io[launch.graph],
                              f"{launch.graph} engine")
        stream = self.stream

        def run() -> None:
            for name, address in table:
                context.set_tensor_address(name, address)
            if not context.execute_async_v3(stream):
                raise RuntimeError(f"TensorRT could not enqueue the {launch.graph} engine")

        return run

    def prepare_zero(self, name: str) -> Callable[[], None]:
        address, nbytes = self.layout.addresses[name], self.layout.specs[name].nbytes
        return lambda: self.cuda.memset_async(address, nbytes, self.stream)

    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]:
        d, s = self.layout.addresses[dst], self.layout.addresses[src]
        nbytes = self.layout.specs[dst].nbytes
        return lambda: self.cuda.copy_async(d, s, nbytes, self.stream)

    def prepare_noise(self, name: str, step: int) -> Callable[[], None]:
        spec = self.layout.specs[name]
        out, base = self.layout.addresses[name], self.layout.addresses["noise_base"]
        batch, per_video = spec.shape[0], math.prod(spec.shape[1:])
        return lambda: self.kernel.launch(out, base, step, batch, per_video, self.stream)

    def capture(self, launches: Sequence[Callable[[], None]]) -> Callable[[], None]:
        self.synchronize()
        graph = self.cuda.capture(self.stream, launches)
        return lambda: self.cuda.launch_graph(graph, self.stream)

    def buffer_identities(self) -> dict[str, int]:
        return dict(self.layout.addresses)
