"""ONNX Runtime backend: one session per graph, IO binding over preallocated buffers.

On the CPU every buffer is a numpy array and its OrtValue shares that memory, so writing a
buffer is a copy into it and nothing is rebound. Table buffers get one OrtValue per row (views
of the same array). Noise is drawn on the host.

On the CUDA execution provider the buffers are `device_buffers.DeviceBuffers` on one stream of
our own (cuda-python), which every session computes on (the provider option
user_compute_stream). Launches bind the device addresses directly (IOBinding.bind_input /
bind_output with a buffer pointer), the noise is the CUDA kernel of `device_noise` on that same
stream, and the conditioning frames are copied on the device, so nothing is uploaded per step.
Runs do not wait for the GPU (run option disable_synchronize_execution_providers = 1): the host
waits once per frame, when it reads the result. Each launch gets its IOBinding once, when the
schedule is prepared.

close(): wait for the stream, drop the sessions, then free the buffers and the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .lifetime import Closing
from .plan import BufferSpec, Launch

ORT_NO_CUDA = ("onnxruntime cannot run on CUDA here: pip install 'vidm-rt[gpu]' (CUDA 12) or "
               "'vidm-rt[gpu-cu13]' (CUDA 13), or use --device cpu")


class OrtBackend(Closing):
    name = "onnxruntime"
    can_capture = False

    def __init__(self, engine_dir: Path, files: dict[str, str], device: str = "cpu",
                 threads: int | None = None, emulate_fp16: bool = False) -> None:
        """`files` maps each graph to its file in `engine_dir` (one precision's graphs);
        `emulate_fp16` runs each through vidm_rt.precision.emulate_fp16."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(
                "the onnxruntime backend needs onnxruntime: pip install 'vidm-rt[cpu]' "
                "(or 'vidm-rt[gpu]' for CUDA)"
            ) from None
        self._ort = ort
        self.device = device
        self.sessions: dict[str, Any] = {}
        self.cuda: Any = None
        self.run_options = ort.RunOptions()
        if device == "cpu":
            providers: list[Any] = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            providers = self._open_cuda()
        else:
            raise ValueError(f"unknown device {device!r}: use cpu or cuda[:N]")
        self.device_noise = self.cuda is not None
        try:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                opts.intra_op_num_threads = threads
            for graph, file in files.items():
                source = (_emulated_fp16(engine_dir / file) if emulate_fp16
                          else str(engine_dir / file))
                session = ort.InferenceSession(source, sess_options=opts, providers=providers)
                self.sessions[graph] = session
                # get_available_providers() lists CUDA whenever the package was built with it;
                # a session whose CUDA library cannot load (a CUDA major the install lacks)
                # falls back to the CPU silently, and would read device pointers as host memory.
                if self.cuda is not None and "CUDAExecutionProvider" not in session.get_providers():
                    raise ValueError(f"{ORT_NO_CUDA} (its CUDA provider did not load for {file}: "
                                     "see docs/gpu.md for the install of your CUDA version)")
        except BaseException:
            self.close()
            raise
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}          # name -> OrtValue, or list of row OrtValues

    def _device_id(self) -> int:
        return int(self.device.split(":")[1]) if ":" in self.device else 0

    def _open_cuda(self) -> list[Any]:
        """The CUDA provider on a stream of our own, with the noise kernel and no waiting."""
        from . import cuda_memory

        if "CUDAExecutionProvider" not in self._ort.get_available_providers():
            raise ValueError(ORT_NO_CUDA)
        self.cuda = cuda_memory.open_device(self._device_id())
        try:
            self.stream = self.cuda.create_stream()
            self.kernel = self.cuda.noise_kernel()
        except BaseException:
            self.close()
            raise
        self.run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        return [("CUDAExecutionProvider", {"device_id": str(self._device_id()),
                                           "user_compute_stream": str(self.stream)})]

    def make_current(self) -> None:
        if self.cuda is not None:
            self.cuda.make_current()

    def allocate(self, specs: list[BufferSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        if self.cuda is not None:
            from .device_buffers import DeviceBuffers

            self.buffers = DeviceBuffers(self.cuda, self.stream, specs)
            return
        ort = self._ort
        for spec in specs:
            arr = np.zeros(spec.shape, np.dtype(spec.dtype))
            self.arrays[spec.name] = arr
            if spec.table:
                self.values[spec.name] = [ort.OrtValue.ortvalue_from_numpy(r) for r in arr]
            else:
                self.values[spec.name] = ort.OrtValue.ortvalue_from_numpy(arr)

    def write(self, name: str, value: np.ndarray) -> None:
        if self.cuda is not None:
            self.buffers.write(name, value)
        else:
            np.copyto(self.arrays[name], value, casting="same_kind")

    def read(self, name: str) -> np.ndarray:
        if self.cuda is not None:
            return self.buffers.read(name)
        return self.arrays[name].copy()

    def _value(self, ref: tuple[str, int | None]) -> Any:
        name, row = ref
        return self.values[name] if row is None else self.values[name][row]

    def prepare(self, launch: Launch) -> Callable[[], None]:
        session = self.sessions[launch.graph]
        binding = session.io_binding()
        for refs, bind_value, bind_pointer in (
                (launch.inputs, binding.bind_ortvalue_input, binding.bind_input),
                (launch.outputs, binding.bind_ortvalue_output, binding.bind_output)):
            for name, ref in refs.items():
                if self.cuda is None:
                    bind_value(name, self._value(ref))
                else:
                    layout = self.buffers.layout
                    bind_pointer(name, "cuda", self._device_id(),
                                 np.dtype(layout.specs[ref[0]].dtype), list(layout.shape(ref)),
                                 layout.address(ref))
        run_options, buffers = self.run_options, getattr(self, "buffers", None)

        def run() -> None:
            session.run_with_iobinding(binding, run_options)
            if buffers is not None:
                buffers.busy = True

        return run

    def prepare_zero(self, name: str) -> Callable[[], None]:
        if self.cuda is not None:
            return self.buffers.zero(name)
        arr = self.arrays[name]
        return lambda: arr.fill(0)

    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]:
        if self.cuda is not None:
            return self.buffers.copy(dst, src)
        d, s = self.arrays[dst], self.arrays[src]
        return lambda: np.copyto(d, s)

    def prepare_noise(self, name: str, step: int) -> Callable[[], None]:
        return self.buffers.noise(self.kernel, name, step)

    def capture(self, launches: Any) -> Callable[[], None]:
        raise RuntimeError("the onnxruntime backend does not capture CUDA graphs")

    def synchronize(self) -> None:
        """On the CPU run_with_iobinding returns when the outputs are written."""
        if self.cuda is not None:
            self.buffers.synchronize()

    def buffer_identities(self) -> dict[str, int]:
        """Addresses of the buffers' memory, to show the loop never reallocates them."""
        if self.cuda is not None:
            return dict(self.buffers.layout.addresses)
        out = {}
        for name, value in self.values.items():
            first = value[0] if isinstance(value, list) else value
            out[name] = first.data_ptr()
        return out

    def close(self) -> None:
        """Wait for the GPU, drop the sessions, then free the device memory (idempotent)."""
        cuda, self.cuda = self.cuda, None
        if cuda is not None:
            cuda.release_graphs()   # waits for the stream: no session may still be running
        self.sessions.clear()
        self.__dict__.pop("buffers", None)
        self.__dict__.get("values", {}).clear()
        self.__dict__.get("arrays", {}).clear()
        if cuda is not None:
            cuda.close()


def _emulated_fp16(path: Path) -> bytes:
    """The graph file `path` rewritten to round every FP16 tensor (vidm_rt/precision.py)."""
    try:
        import onnx
    except ImportError:
        raise ValueError("emulating an FP16 engine rewrites the graphs with the onnx package: "
                         "pip install onnx (or run the FP16 graphs as ONNX Runtime does)") from None
    from ..precision import emulate_fp16

    return emulate_fp16(onnx.load(str(path))).SerializeToString()
