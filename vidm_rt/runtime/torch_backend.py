"""Torch backend: the reference PyTorch models on the same static schedule, on CPU or CUDA.

Buffers are preallocated tensors; a launch runs the model on its input buffers and copies the
result into its output buffer. The update is `vidm_rt.schedule.apply_update` on the same
coefficient table the ONNX graph uses. Importing this module imports torch.

On CUDA: host writes and reads go through pinned staging tensors; the noise comes from the CUDA
kernel of `device_noise` (cuda-python) on torch's current stream; with that, each frame is
captured once as a torch.cuda.CUDAGraph and replayed (`frame.py`). Without cuda-python the frame
runs eagerly with host noise. Precision "fp16" runs the denoisers under FP16 autocast; the flow,
the update and every buffer stay FP32, as in the export's fp16 graphs.

The host waits for the GPU once per frame, when it reads the result: a staged write waits only
if its staging tensor still feeds an upload enqueued since the last wait. close() waits for the
stream and drops the captured graphs, the buffers and the models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..manifest import Manifest
from ..schedule import COEFFICIENT_NAMES, SamplerTable, apply_update
from .lifetime import Closing
from .plan import BufferSpec, Launch

# torch has no full uint32 support: the noise address is stored as int32 with the same bits.
_TORCH_DTYPES = {"float32": torch.float32, "uint32": torch.int32}


class TorchBackend(Closing):
    name = "torch"

    def __init__(self, engine_dir: Path, manifest: Manifest, device: str = "cpu",
                 threads: int | None = None, table: SamplerTable | None = None,
                 options: Any = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        precision = getattr(options, "precision", None) or "fp32"
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"the torch backend runs fp32, or fp16 autocast on CUDA, not "
                             f"{precision}: int8 needs --backend tensorrt")
        if precision == "fp16" and not self.cuda:
            raise ValueError("fp16 autocast needs --device cuda (use fp32 on the CPU)")
        if self.cuda and not torch.cuda.is_available():
            raise ValueError("torch has no CUDA here: install a CUDA build of torch, or use "
                             "--device cpu")
        self.autocast = precision == "fp16"
        self.gpu_name = torch.cuda.get_device_name(self.device) if self.cuda else None
        self.noise_kernel = None
        if self.cuda:
            from .device_noise import load_noise_kernel

            torch.cuda.set_device(self.device)
            self.noise_kernel = load_noise_kernel(required=False)
        self.device_noise = self.noise_kernel is not None
        self.can_capture = self.device_noise
        ckpt = load_checkpoint(engine_dir / "model.safetensors")
        self.content = ckpt.content.to(self.device).eval() if ckpt.content else None
        self.motion = ckpt.motion.to(self.device).eval()
        self.table = table or manifest.sampler
        self.channels = ckpt.config.image_channels
        self.tensors: dict[str, torch.Tensor] = {}
        self.staging: dict[str, torch.Tensor] = {}
        self._uploading: set[str] = set()   # staging tensors an enqueued copy still reads
        self._graphs: list[Any] = []

    def allocate(self, specs: list[BufferSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        for spec in specs:
            dtype = _TORCH_DTYPES[spec.dtype]
            self.tensors[spec.name] = torch.zeros(spec.shape, dtype=dtype, device=self.device)
            if self.cuda and spec.host:
                self.staging[spec.name] = torch.zeros(spec.shape, dtype=dtype, pin_memory=True)

    def _host_view(self, name: str, value: np.ndarray) -> torch.Tensor:
        spec = self.specs[name]
        arr = np.ascontiguousarray(value, spec.dtype).reshape(spec.shape)
        return torch.from_numpy(arr.view(np.int32) if spec.dtype == "uint32" else arr)

    def write(self, name: str, value: np.ndarray) -> None:
        if name not in self.staging:
            self.tensors[name].copy_(self._host_view(name, value))
            return
        if name in self._uploading:
            self.synchronize()
        self.staging[name].copy_(self._host_view(name, value))
        self.tensors[name].copy_(self.staging[name], non_blocking=True)
        self._uploading.add(name)

    def read(self, name: str) -> np.ndarray:
        if name not in self.staging:
            return self.tensors[name].cpu().numpy().copy()
        self.staging[name].copy_(self.tensors[name], non_blocking=True)
        self.synchronize()
        return self.staging[name].numpy().copy()

    def make_current(self) -> None:
        if self.cuda:
            torch.cuda.set_device(self.device)   # per thread, as cudaSetDevice

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()
        self._uploading.clear()

    def _get(self, ref: tuple[str, int | None]) -> torch.Tensor:
        name, row = ref
        return self.tensors[name] if row is None else self.tensors[name][row]

    def prepare(self, launch: Launch) -> Callable[[], None]:
        ins = {n: self._get(r) for n, r in launch.inputs.items()}
        outs = {n: self._get(r) for n, r in launch.outputs.items()}
        c = self.channels
        if launch.graph == "update" and launch.inputs["coef"][1] >= self.table.steps:
            scale = COEFFICIENT_NAMES.index("noise_std")  # the conditioning row: x + s * noise

            def fn() -> dict[str, torch.Tensor]:
                return {"x_next": ins["x"] + ins["coef"][scale] * ins["noise"],
                        "x0": torch.zeros_like(ins["x"])}
        elif launch.graph == "update":
            step = launch.inputs["coef"][1]

            def fn() -> dict[str, torch.Tensor]:
                out = ins["model_out"]
                x_next, x0 = apply_update(self.table, step, ins["x"], out[:, :c], out[:, c:],
                                          ins["noise"], ins["x0_prev"], exp=torch.exp)
                return {"x_next": x_next, "x0": x0}
        elif launch.graph == "flow":
            def fn() -> dict[str, torch.Tensor]:
                return {"flow": self.motion.compute_flow(ins["x_first"], ins["x_prev"])}
        elif launch.graph == "motion":
            def fn() -> dict[str, torch.Tensor]:
                with self._precision():
                    return {"out": self.motion.denoise(ins["x_t"], ins["t"], ins["k"],
                                                       ins["flow"], ins["x_first"])}
        else:
            def fn() -> dict[str, torch.Tensor]:
                with self._precision():
                    return {"out": self.content(ins["x_t"], ins["t"])}

        @torch.no_grad()
        def run() -> None:
            for name, value in fn().items():
                outs[name].copy_(value)

        return run

    def _precision(self) -> Any:
        if not self.cuda:
            return contextlib.nullcontext()
        if self.autocast:
            # cache_enabled=False: autocast's weight cache must not outlive a graph capture.
            return torch.autocast("cuda", dtype=torch.float16, cache_enabled=False)
        # fp32 means fp32: cuDNN would otherwise run convolutions in TF32 on Ampere and newer.
        return torch.backends.cudnn.flags(enabled=True, benchmark=torch.backends.cudnn.benchmark,
                                          allow_tf32=False)

    def prepare_zero(self, name: str) -> Callable[[], None]:
        return self.tensors[name].zero_

    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]:
        d, s = self.tensors[dst], self.tensors[src]
        return lambda: d.copy_(s)

    def prepare_noise(self, name: str, step: int) -> Callable[[], None]:
        out, base = self.tensors[name], self.tensors["noise_base"]
        kernel, batch, per_video = self.noise_kernel, out.shape[0], out[0].numel()

        def draw() -> None:
            # The current stream: torch.cuda.graph captures on its own side stream.
            stream = torch.cuda.current_stream(self.device).cuda_stream
            kernel.launch(out.data_ptr(), base.data_ptr(), step, batch, per_video, stream)

        return draw

    def capture(self, launches: list[Callable[[], None]]) -> Callable[[], None]:
        self.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for fn in launches:
                fn()
        self._graphs.append(graph)
        return graph.replay

    def buffer_identities(self) -> dict[str, int]:
        return {name: t.data_ptr() for name, t in self.tensors.items()}

    def close(self) -> None:
        """Wait for the stream, then drop graphs, buffers and models (idempotent)."""
        if self.cuda and self.tensors:
            self.synchronize()
        self._graphs.clear()
        self.tensors.clear()
        self.staging.clear()
        self.content = self.motion = None
