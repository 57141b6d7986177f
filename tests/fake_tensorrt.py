"""A fake `tensorrt` module over FakeCuda (tests/fake_gpu.py).

make_tensorrt() returns a module with the parts of the TensorRT Python API vidm-rt uses
(scripts/api_check.sh checks every one of them against the real bindings of TensorRT 10.x and
11.x). A "plan" is the ONNX file behind a magic prefix; an engine runs it with ONNX Runtime on
the memory at the addresses its context holds when the enqueued work runs: for a captured
enqueue that is at replay, the addresses the context holds then (a context may keep its
addresses in memory it owns), and re-addressing a context that a capture holds is an error. The
builder records every network, flag and config it is given in `module.builds`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.fake_gpu import FakeCuda
from vidm_rt.runtime import cuda_memory

PLAN_MAGIC = b"FAKEPLAN"


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
        self.captured = False   # enqueued while a stream was capturing
        self.addressed = 0      # set_tensor_address calls

    def set_device_memory(self, address: int, size: int) -> None:
        assert self.strategy == "USER_MANAGED", "device memory set on a context that owns its own"
        self.device_memory = (address, size)

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.input_shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        assert address % 256 == 0, f"{name}: address not 256-byte aligned"
        assert not (self.captured and self.addresses.get(name) != address), (
            f"{name}: re-addressing an execution context that a CUDA graph captured (its "
            "replays would read the new address): use one context per binding set")
        self.addresses[name] = address
        self.addressed += 1
        return True

    def execute_async_v3(self, stream: int) -> bool:
        engine, cuda = self.engine, self.engine.cuda
        assert set(self.addresses) == set(engine.tensors), "unbound tensors"
        if self.strategy == "USER_MANAGED":
            assert self.device_memory is not None, "no activation memory set"
            address, size = self.device_memory
            assert size >= engine.device_memory_size_v2, "activation memory too small"
            cuda.resolve(address, engine.device_memory_size_v2)  # live and large enough
        inputs = [n for n, (is_in, _) in engine.tensors.items() if is_in]
        outputs = [n for n, (is_in, _) in engine.tensors.items() if not is_in]

        def view(name: str) -> np.ndarray:
            shape = engine.tensors[name][1]
            n = int(np.prod(shape))
            return cuda.resolve(self.addresses[name], 4 * n).view(np.float32).reshape(shape)

        def run() -> None:
            # The addresses the context holds when the work runs (at replay for a capture).
            results = engine.session.run(outputs, {n: view(n).copy() for n in inputs})
            for name, value in zip(outputs, results, strict=True):
                view(name)[...] = value

        self.captured = self.captured or cuda.capturing(stream)
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


def install(monkeypatch: Any, cuda: FakeCuda, version: str = "10.12.0.36") -> types.ModuleType:
    """`cuda` as every GPU (open_device(index) opens it as that index) and a fake tensorrt of
    `version` over it, installed for the code under test; returns the tensorrt module."""
    import sys

    trt = make_tensorrt(cuda, version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_memory, "open_device", cuda.open)
    return trt
