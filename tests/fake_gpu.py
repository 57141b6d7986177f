"""A fake CUDA device and a fake `tensorrt` module, so CPU tests run the TensorRT path end to end.

FakeCuda implements vidm_rt.runtime.cuda_memory.CudaMemory over numpy: "device" pointers are real
addresses of numpy arrays (256-byte aligned), stream work runs at once unless the stream is
capturing, in which case it is recorded and a "graph launch" replays the recording. Every call
is logged in `calls` (copies as memcpy_htod, memcpy_dtoh or memcpy_dtod, pinned staging being
the host side), every stream that work was enqueued on in `streams_used`. close() frees every
allocation (counted in `frees`); memory used after that fails. `capture_fails=True` makes every
capture fail as CUDA does when a capture is invalidated. The noise kernel fills its output with
vidm_rt.noise, reading `base` (per row: [video, frame, key low, key high]) from memory
when it runs (as the CUDA kernel does at replay).

FakeCudaRuntime stands in for `cuda.bindings.runtime` under the real CudaBindingsMemory: it
records every call and hands out fake device pointers and real host memory.

make_tensorrt() returns a module with the parts of the TensorRT Python API vidm-rt uses. A "plan"
is the ONNX file behind a magic prefix; an engine runs it with ONNX Runtime on the memory at the
addresses its context holds at enqueue time. The builder records every network, flag and config
it is given in `module.builds`.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidm_rt import noise
from vidm_rt.runtime.cuda_memory import HostBuffer

PLAN_MAGIC = b"FAKEPLAN"


class FakeCuda:
    device_name = "Fake GPU 8GB"
    compute_capability = "8.7"

    def __init__(self, capture_fails: bool = False) -> None:
        self.calls: list[str] = []
        self.capture_fails = capture_fails
        self._allocations: list[np.ndarray] = []
        self._pinned: set[int] = set()       # addresses of pinned (not mapped) host memory
        self.frees: dict[int, int] = {}      # address -> times freed
        self._capturing: dict[int, list[Callable[[], None]] | None] = {}
        self.streams_used: set[int] = set()
        self.graphs: list[list] = []

    # memory
    def _new(self, nbytes: int) -> np.ndarray:
        assert nbytes > 0, "cudaMalloc(0) returns no pointer"
        raw = np.zeros(nbytes + 256, np.uint8)
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
        self.calls.append("malloc")
        return self._new(nbytes).ctypes.data

    def host_alloc(self, nbytes: int, mapped: bool) -> HostBuffer:
        self.calls.append("host_alloc_mapped" if mapped else "host_alloc")
        arr = self._new(nbytes)
        if not mapped:
            self._pinned.add(arr.ctypes.data)
        return HostBuffer(arr, arr.ctypes.data if mapped else None)

    # streams
    def create_stream(self) -> int:
        self.calls.append("create_stream")
        handle = 1000 + len(self._capturing)
        self._capturing[handle] = None
        return handle

    def enqueue(self, stream: int, what: str, fn: Callable[[], None]) -> None:
        assert stream in self._capturing, f"{what} on an unknown stream {stream}"
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
        self.enqueue(stream, kind, lambda: np.copyto(d, s))

    def memset_async(self, dst: int, nbytes: int, stream: int) -> None:
        d = self.resolve(dst, nbytes)
        self.enqueue(stream, "memset", lambda: d.fill(0))

    def synchronize(self, stream: int) -> None:
        assert self._capturing[stream] is None, "synchronize during capture"
        self.calls.append("sync")

    def capture(self, stream: int, launches: Sequence[Callable[[], None]]) -> list:
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


# ---- tensorrt ------------------------------------------------------------------------------


class _Enum:
    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)


class FakeEngine:
    def __init__(self, onnx_bytes: bytes, cuda: FakeCuda) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_bytes, sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.cuda = cuda
        self.tensors = {t.name: (True, tuple(t.shape)) for t in self.session.get_inputs()}
        self.tensors.update({t.name: (False, tuple(t.shape)) for t in self.session.get_outputs()})
        self.names = list(self.tensors)
        # A different activation need per engine: 4 KiB per node of its graph.
        import onnx

        self.device_memory_size_v2 = 4096 * len(onnx.load_from_string(onnx_bytes).graph.node)

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if self.tensors[name][0] else "OUTPUT"

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name][1]

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def create_execution_context(self, strategy: str = "STATIC") -> FakeContext:
        return FakeContext(self, strategy)


class FakeContext:
    def __init__(self, engine: FakeEngine, strategy: str) -> None:
        self.engine = engine
        self.strategy = strategy
        self.device_memory: tuple[int, int] | None = None
        self.addresses: dict[str, int] = {}
        self.input_shapes: dict[str, tuple[int, ...]] = {}

    def set_device_memory(self, address: int, size: int) -> None:
        assert self.strategy == "USER_MANAGED", "device memory set on a context that owns its own"
        self.device_memory = (address, size)

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.input_shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        assert address % 256 == 0, f"{name}: address not 256-byte aligned"
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream: int) -> bool:
        engine, cuda = self.engine, self.engine.cuda
        assert set(self.addresses) == set(engine.tensors), "unbound tensors"
        if self.strategy == "USER_MANAGED":
            assert self.device_memory is not None, "no activation memory set"
            address, size = self.device_memory
            assert size >= engine.device_memory_size_v2, "activation memory too small"
            cuda.resolve(address, engine.device_memory_size_v2)  # live and large enough
        views = {}
        for name, (_, shape) in engine.tensors.items():
            n = int(np.prod(shape))
            views[name] = cuda.resolve(self.addresses[name], 4 * n).view(np.float32).reshape(shape)
        inputs = [n for n, (is_in, _) in engine.tensors.items() if is_in]
        outputs = [n for n, (is_in, _) in engine.tensors.items() if not is_in]

        def run() -> None:
            results = engine.session.run(outputs, {n: views[n].copy() for n in inputs})
            for name, value in zip(outputs, results, strict=True):
                views[name][...] = value

        cuda.enqueue(stream, "execute_async_v3", run)
        return True


class FakeLayer:
    """A parsed ONNX node: its op as the layer type, its outputs' ONNX types as their dtypes
    ("float32", "float16" or the ONNX type name); precision and output types as set."""

    def __init__(self, name: str, layer_type: str, dtypes: list[str]) -> None:
        self.name, self.type = name, layer_type
        self.precision: str | None = None
        self.output_types: dict[int, str] = {}
        self._outputs = [types.SimpleNamespace(dtype=d) for d in dtypes]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, j: int) -> Any:
        return self._outputs[j]

    def set_output_type(self, j: int, dtype: str) -> None:
        self.output_types[j] = dtype


@dataclass
class FakeNetwork:
    flags: int
    source: str | None = None
    inputs: list[Any] = field(default_factory=list)
    layers: list[FakeLayer] = field(default_factory=list)

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> Any:
        return self.inputs[i]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, i: int) -> FakeLayer:
        return self.layers[i]


class FakeParser:
    def __init__(self, network: FakeNetwork, logger: Any) -> None:
        self.network = network
        self.num_errors = 0

    def parse_from_file(self, path: str) -> bool:
        import onnx

        model = onnx.load(path)
        self.network.source = path
        self.network.inputs = [
            types.SimpleNamespace(name=i.name, shape=tuple(
                d.dim_value if d.HasField("dim_value") else -1
                for d in i.type.tensor_type.shape.dim))
            for i in model.graph.input]
        g = onnx.shape_inference.infer_shapes(model).graph
        elem = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
        names = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}
        self.network.layers = [
            FakeLayer(n.name, n.op_type.upper(),
                      [names.get(elem.get(y), onnx.TensorProto.DataType.Name(elem.get(y, 0)))
                       for y in n.output])
            for n in model.graph.node]
        return True

    def get_error(self, i: int) -> str:
        return ""


class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.loaded = bytes(data)
        self.builds = int(data.decode() or 0) if data else 0

    def serialize(self) -> bytes:
        return str(self.builds).encode()


class FakeConfig:
    def __init__(self) -> None:
        self.flags: set[str] = {"TF32"}  # TensorRT's default
        self.cleared: set[str] = set()
        self.pools: dict[str, int] = {}
        self.builder_optimization_level = 3
        self.default_device_type = "GPU"
        self.DLA_core = -1
        self.timing_cache: FakeTimingCache | None = None
        self.profiles: list[Any] = []

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.pools[pool] = size

    def set_flag(self, flag: str) -> None:
        self.flags.add(flag)

    def clear_flag(self, flag: str) -> None:
        self.flags.discard(flag)
        self.cleared.add(flag)

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        return FakeTimingCache(data)

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def add_optimization_profile(self, profile: Any) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


def make_tensorrt(cuda: FakeCuda, version: str = "10.12.0.36") -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.builds = []

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity: str = "WARNING") -> None:
            self.severity = severity

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
            if not data.startswith(PLAN_MAGIC + version.encode() + b"\n"):
                return None
            return FakeEngine(data.split(b"\n", 1)[1], cuda)

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> FakeNetwork:
            return FakeNetwork(flags)

        def create_builder_config(self) -> FakeConfig:
            return FakeConfig()

        def create_optimization_profile(self) -> Any:
            profile = types.SimpleNamespace(shapes={})
            profile.set_shape = lambda name, lo, opt, hi: profile.shapes.__setitem__(
                name, (lo, opt, hi))
            return profile

        def build_serialized_network(self, network: FakeNetwork, config: FakeConfig) -> bytes:
            trt.builds.append({"network": network, "config": config})
            config.timing_cache.builds += 1
            with open(network.source, "rb") as f:
                return PLAN_MAGIC + version.encode() + b"\n" + f.read()

    trt.Logger, trt.Runtime, trt.Builder, trt.OnnxParser = Logger, Runtime, Builder, FakeParser
    trt.TensorIOMode = _Enum(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.ExecutionContextAllocationStrategy = _Enum(STATIC="STATIC",
                                                   ON_PROFILE_CHANGE="ON_PROFILE_CHANGE",
                                                   USER_MANAGED="USER_MANAGED")
    trt.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=0)
    trt.MemoryPoolType = _Enum(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = _Enum(FP16="FP16", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK", TF32="TF32",
                            OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS")
    trt.LayerType = _Enum(CAST="CAST", IDENTITY="IDENTITY", CONSTANT="CONSTANT", SHAPE="SHAPE")
    trt.float32, trt.float16 = "float32", "float16"
    trt.DeviceType = _Enum(GPU="GPU", DLA="DLA")
    trt.nptype = lambda dtype: np.dtype(dtype).type
    return trt
