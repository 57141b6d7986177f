"""ONNX Runtime backend: one session per graph, IO binding over preallocated OrtValues.

On the CPU every buffer is a numpy array and its OrtValue shares that memory, so writing a
buffer is a copy into it and nothing is rebound. Table buffers get one OrtValue per row (views
of the same array). On the CUDA execution provider every buffer is a device OrtValue, written
with update_inplace. Each launch gets its IOBinding once, when the schedule is prepared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .plan import BufferSpec, Launch


class OrtBackend:
    name = "onnxruntime"
    device_noise = False
    can_capture = False

    def __init__(self, engine_dir: Path, files: dict[str, str], device: str = "cpu",
                 threads: int | None = None, emulate_fp16: bool = False) -> None:
        """`files` maps each graph to its file in `engine_dir` (one precision's graphs);
        `emulate_fp16` runs each through vidm_rt.export.fp16_emulation."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(
                "the onnxruntime backend needs onnxruntime: pip install 'vidm-rt[cpu]' "
                "(or 'vidm-rt[gpu]' for CUDA)"
            ) from None
        self._ort = ort
        self.device = device
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("onnxruntime has no CUDA execution provider here: "
                                 "pip install onnxruntime-gpu, or use --device cpu")
            providers = [("CUDAExecutionProvider", {"device_id": self._device_id()})]
        else:
            raise ValueError(f"unknown device {device!r}: use cpu or cuda[:N]")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.sessions = {
            graph: ort.InferenceSession(
                _emulated_fp16(engine_dir / file) if emulate_fp16 else str(engine_dir / file),
                sess_options=opts, providers=providers)
            for graph, file in files.items()
        }
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}          # name -> OrtValue, or list of row OrtValues

    def _device_id(self) -> int:
        return int(self.device.split(":")[1]) if ":" in self.device else 0

    def graphs(self) -> set[str]:
        return set(self.sessions)

    def allocate(self, specs: list[BufferSpec]) -> None:
        ort = self._ort
        self._specs = {spec.name: spec for spec in specs}
        for spec in specs:
            dtype = np.dtype(spec.dtype)
            if self.device == "cpu":
                arr = np.zeros(spec.shape, dtype)
                self.arrays[spec.name] = arr
                if spec.table:
                    self.values[spec.name] = [ort.OrtValue.ortvalue_from_numpy(r) for r in arr]
                else:
                    self.values[spec.name] = ort.OrtValue.ortvalue_from_numpy(arr)
            else:
                def device_value(shape: tuple[int, ...], dtype: np.dtype = dtype) -> Any:
                    return ort.OrtValue.ortvalue_from_shape_and_type(
                        list(shape), dtype, "cuda", self._device_id())
                if spec.table:
                    self.values[spec.name] = [device_value(spec.row_shape)
                                              for _ in range(spec.shape[0])]
                else:
                    self.values[spec.name] = device_value(spec.shape)

    def write(self, name: str, value: np.ndarray) -> None:
        if self.device == "cpu":
            np.copyto(self.arrays[name], value, casting="same_kind")
            return
        target = self.values[name]
        value = np.ascontiguousarray(value, dtype=self._specs[name].dtype)
        if isinstance(target, list):
            for row, v in zip(target, value, strict=True):
                row.update_inplace(np.ascontiguousarray(v))
        else:
            target.update_inplace(value)

    def read(self, name: str) -> np.ndarray:
        if self.device == "cpu":
            return self.arrays[name].copy()
        return self.values[name].numpy()

    def _value(self, ref: tuple[str, int | None]) -> Any:
        name, row = ref
        return self.values[name] if row is None else self.values[name][row]

    def prepare(self, launch: Launch) -> Callable[[], None]:
        session = self.sessions[launch.graph]
        binding = session.io_binding()
        for name, ref in launch.inputs.items():
            binding.bind_ortvalue_input(name, self._value(ref))
        for name, ref in launch.outputs.items():
            binding.bind_ortvalue_output(name, self._value(ref))

        def run() -> None:
            session.run_with_iobinding(binding)

        return run

    def prepare_zero(self, name: str) -> Callable[[], None]:
        zeros = np.zeros(self._specs[name].shape, self._specs[name].dtype)
        return lambda: self.write(name, zeros)

    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]:
        if self.device == "cpu":
            d, s = self.arrays[dst], self.arrays[src]
            return lambda: np.copyto(d, s)
        return lambda: self.write(dst, self.read(src))

    def synchronize(self) -> None:
        """run_with_iobinding returns when the outputs are written."""

    def buffer_identities(self) -> dict[str, int]:
        """Addresses of the buffers' memory, to show the loop never reallocates them."""
        out = {}
        for name, value in self.values.items():
            first = value[0] if isinstance(value, list) else value
            out[name] = first.data_ptr()
        return out


def _emulated_fp16(path: Path) -> bytes:
    """The graph file `path` rewritten to round every FP16 tensor (export/fp16_emulation.py)."""
    try:
        import onnx
    except ImportError:
        raise ValueError("emulating an FP16 engine rewrites the graphs with the onnx package: "
                         "pip install onnx (or run the FP16 graphs as ONNX Runtime does)") from None
    from ..export.fp16_emulation import emulate_fp16

    return emulate_fp16(onnx.load(str(path))).SerializeToString()
