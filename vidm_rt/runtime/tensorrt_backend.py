"""TensorRT backend: the engine directory's plans over device buffers allocated once.

One execution context per distinct binding set: a launch's context gets its I/O tensor
addresses (`bindings.py`) once, when the launch is prepared, and a launch only enqueues it with
execute_async_v3. The launches of one graph differ in their addresses (x ping-pong, table
rows), and a captured CUDA graph is tied to the state of the contexts it was captured with (a
context may keep its addresses in memory it owns, which a replay reads as they are then): so
no context is ever re-addressed, and a frame's capture holds S enqueues of S contexts, not S of
one. The schedule's buffers are `device_buffers.DeviceBuffers` (pinned staging only for the
host-visible ones, or mapped memory with --zero-copy), all on the backend's one stream. Noise
comes from the CUDA kernel (`device_noise.py`), so `frame.py` captures a whole frame once and
replays it.

Activation memory: the launches never overlap, so every context runs on one device buffer of
the largest need of the directory's engines (`activation_memory`), which keeps a context per
binding set cheap. Importing this module imports neither torch nor TensorRT; TensorRT is
imported when a backend is made. Only named-tensor APIs (TensorRT 10.3 .. 11.x).

close() (also on a failed construction): wait for the stream, destroy the captured graphs, drop
the contexts, engines and runtime, then free the buffers, the activation memory and the stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest, ManifestError, check_tensorrt_target, require_kind
from .bindings import TensorInfo, binding_table
from .device_buffers import DeviceBuffers
from .lifetime import Closing
from .plan import BufferSpec, Launch

TENSORRT_MISSING = ("TensorRT is not installed: pip install 'vidm-rt[gpu]' (CUDA 12) or "
                    "'vidm-rt[gpu-cu13]' (CUDA 13); on a Jetson it comes with JetPack")


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


def activation_memory(engines: dict[str, Any], malloc: Callable[[int], int]) -> tuple[int, int]:
    """(address, size) of one activation buffer of the largest need of `engines`, for every
    execution context of the directory.

    Every supported version takes the same path: contexts created with
    ExecutionContextAllocationStrategy.USER_MANAGED (TensorRT 10.0 and later), each engine's
    need read from ICudaEngine.device_memory_size_v2 and the buffer set with
    IExecutionContext.set_device_memory(ptr, size) (both since 10.1). That covers JetPack 6's
    TensorRT 10.3 through 11.x; the older create_execution_context_without_device_memory,
    device_memory_size and the device_memory property are deprecated in 10.x and removed in
    11.x, so they are not used.
    """
    size = max(int(engine.device_memory_size_v2) for engine in engines.values())
    # cudaMalloc(0) returns no pointer: engines that need no activations get none.
    return (malloc(size) if size else 0), size


class TensorRTBackend(Closing):
    name = "tensorrt"
    device_noise = True
    can_capture = True

    def __init__(self, engine_dir: Path, manifest: Manifest, device: str = "cuda",
                 options: Any = None) -> None:
        from . import cuda_memory

        require_kind(manifest, "tensorrt", engine_dir, self.name)
        built = manifest.tensorrt.precision
        precision = getattr(options, "precision", None)
        if precision not in (None, built):
            raise ValueError(f"{engine_dir} holds {built} engines: build {precision} ones with "
                             f"`vidm-rt build {manifest.tensorrt.export} --precision "
                             f"{precision}`")
        self.zero_copy = bool(getattr(options, "zero_copy", False))
        index = device_index(device)
        trt = import_tensorrt()
        self.engines: dict[str, Any] = {}
        # (graph, binding table) -> its execution context
        self.contexts: dict[tuple[str, tuple[tuple[str, int], ...]], Any] = {}
        self.cuda = cuda_memory.open_device(index)
        try:
            self._load(trt, Path(engine_dir), manifest)
        except BaseException:
            self.close()
            raise

    def _load(self, trt: Any, engine_dir: Path, manifest: Manifest) -> None:
        self.gpu_name = self.cuda.device_name
        check_tensorrt_target(manifest.tensorrt, engine_dir, trt.__version__, self.cuda.device_name,
                              self.cuda.compute_capability)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.io: dict[str, dict[str, TensorInfo]] = {}
        for graph, spec in manifest.graphs.items():
            engine = self.runtime.deserialize_cuda_engine((engine_dir / spec.file).read_bytes())
            if engine is None:
                raise ManifestError(f"{engine_dir}: TensorRT could not load {spec.file}: run "
                                    f"`vidm-rt build {manifest.tensorrt.export}` again")
            self.engines[graph] = engine
            self.io[graph] = {
                name: TensorInfo(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                 tuple(engine.get_tensor_shape(name)),
                                 np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name)
                for name in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))}
        self.activation, self.activation_bytes = activation_memory(self.engines, self.cuda.malloc)
        self.shapes = {graph: {name: tensor.shape for name, tensor in spec.inputs.items()}
                       for graph, spec in manifest.graphs.items()}
        self.trt = trt
        self.stream = self.cuda.create_stream()
        self.kernel = self.cuda.noise_kernel()

    def make_current(self) -> None:
        self.cuda.make_current()

    def allocate(self, specs: list[BufferSpec]) -> None:
        self.buffers = DeviceBuffers(self.cuda, self.stream, specs, self.zero_copy)
        self.layout = self.buffers.layout

    def write(self, name: str, value: np.ndarray) -> None:
        self.buffers.write(name, value)

    def read(self, name: str) -> np.ndarray:
        return self.buffers.read(name)

    def synchronize(self) -> None:
        self.buffers.synchronize()

    def _context(self, graph: str, table: tuple[tuple[str, int], ...]) -> Any:
        """The execution context of `graph` bound to `table`, made on first use."""
        key = (graph, table)
        if key not in self.contexts:
            context = self.engines[graph].create_execution_context(
                self.trt.ExecutionContextAllocationStrategy.USER_MANAGED)
            if context is None:
                raise RuntimeError(f"TensorRT could not create an execution context for {graph}")
            context.set_device_memory(self.activation, self.activation_bytes)
            for name, info in self.io[graph].items():
                if info.is_input:  # static shapes: required only where a dimension is dynamic
                    context.set_input_shape(name, self.shapes[graph][name])
            for name, address in table:
                if not context.set_tensor_address(name, address):
                    raise RuntimeError(f"TensorRT refused the address of {name} of {graph}")
            self.contexts[key] = context
        return self.contexts[key]

    def prepare(self, launch: Launch) -> Callable[[], None]:
        table = binding_table(launch, self.layout, self.io[launch.graph],
                              f"{launch.graph} engine")
        context = self._context(launch.graph, tuple(table))
        stream, buffers = self.stream, self.buffers

        def run() -> None:
            if not context.execute_async_v3(stream):
                raise RuntimeError(f"TensorRT could not enqueue the {launch.graph} engine")
            buffers.busy = True

        return run

    def prepare_zero(self, name: str) -> Callable[[], None]:
        return self.buffers.zero(name)

    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]:
        return self.buffers.copy(dst, src)

    def prepare_noise(self, name: str, step: int) -> Callable[[], None]:
        return self.buffers.noise(self.kernel, name, step)

    def capture(self, launches: Sequence[Callable[[], None]]) -> Callable[[], None]:
        return self.buffers.capture(list(launches))

    def buffer_identities(self) -> dict[str, int]:
        return dict(self.layout.addresses)

    def close(self) -> None:
        """Release everything in order (see the module docstring); safe to call again."""
        cuda = self.__dict__.pop("cuda", None)
        if cuda is None:
            return
        cuda.release_graphs()   # waits for the stream first
        self.contexts.clear()   # contexts before their engines, engines before the runtime
        self.engines.clear()
        self.__dict__.pop("runtime", None)
        self.__dict__.pop("buffers", None)
        self.__dict__.pop("layout", None)
        cuda.close()
