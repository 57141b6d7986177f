"""A fake `onnxruntime` whose CUDA execution provider runs on FakeCuda (tests/fake_gpu.py).

Sessions are real CPU sessions. A session made with the CUDA provider records its provider
options; its IO bindings take device pointers only (bind_input / bind_output with a buffer
pointer, as the CUDA path must bind), and run_with_iobinding enqueues the run on the stream
given as user_compute_stream, reading and writing the FakeCuda memory when the stream runs it.
It also checks that the run options ask ONNX Runtime not to wait for the GPU.

`cuda_loads=False` models an install whose CUDA provider library cannot load (a CUDA major the
machine lacks): get_available_providers() still lists CUDA, as the real one does, and the
session falls back to the CPU provider, which get_providers() shows.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from tests.fake_gpu import FakeCuda


class FakeBinding:
    def __init__(self) -> None:
        self.inputs: dict[str, tuple[int, list[int]]] = {}
        self.outputs: dict[str, tuple[int, list[int]]] = {}

    def bind_input(self, name: str, device_type: str, device_id: int, element_type: Any,
                   shape: list[int], buffer_ptr: int) -> None:
        assert device_type == "cuda" and np.dtype(element_type) == np.float32
        self.inputs[name] = (buffer_ptr, list(shape))

    def bind_output(self, name: str, device_type: str, device_id: int, element_type: Any,
                    shape: list[int], buffer_ptr: int) -> None:
        assert device_type == "cuda" and np.dtype(element_type) == np.float32
        self.outputs[name] = (buffer_ptr, list(shape))

    def bind_ortvalue_input(self, name: str, value: Any) -> None:
        raise AssertionError("the CUDA path binds device pointers")

    bind_ortvalue_output = bind_ortvalue_input


def make_onnxruntime(cuda: FakeCuda, cuda_loads: bool = True) -> types.ModuleType:
    import onnxruntime as real

    ort = types.ModuleType("onnxruntime")
    for name in ("SessionOptions", "GraphOptimizationLevel", "RunOptions", "OrtValue"):
        setattr(ort, name, getattr(real, name))
    ort.get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    ort.sessions = []

    class InferenceSession:
        def __init__(self, source: Any, sess_options: Any = None,
                     providers: list[Any] | None = None) -> None:
            (name, self.options), = providers
            assert name == "CUDAExecutionProvider"
            self.providers = [name, "CPUExecutionProvider"] if cuda_loads else [
                "CPUExecutionProvider"]
            self.session = real.InferenceSession(source, sess_options=sess_options,
                                                 providers=["CPUExecutionProvider"])
            ort.sessions.append(self)

        def get_providers(self) -> list[str]:
            return list(self.providers)

        def io_binding(self) -> FakeBinding:
            return FakeBinding()

        def run_with_iobinding(self, binding: FakeBinding, run_options: Any) -> None:
            assert run_options.get_run_config_entry(
                "disable_synchronize_execution_providers") == "1"

            def view(ptr: int, shape: list[int]) -> np.ndarray:
                return cuda.resolve(ptr, 4 * int(np.prod(shape))).view(np.float32).reshape(shape)

            def run() -> None:
                feeds = {n: view(*ref).copy() for n, ref in binding.inputs.items()}
                names = list(binding.outputs)
                for name, value in zip(names, self.session.run(names, feeds), strict=True):
                    view(*binding.outputs[name])[...] = value

            cuda.enqueue(int(self.options["user_compute_stream"]), "ort_run", run)

    ort.InferenceSession = InferenceSession
    return ort
