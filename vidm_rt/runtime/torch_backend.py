"""Torch backend: the reference PyTorch models on the same static schedule, for comparison.

Buffers are preallocated tensors; a launch runs the model on its input buffers and copies the
result into its output buffer. The update is `vidm_rt.schedule.apply_update` on the same
coefficient table the ONNX graph uses. Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..schedule import SamplerTable, apply_update
from .plan import BufferSpec, Launch


class TorchBackend:
    name = "torch"

    def __init__(self, engine_dir: Path, manifest: dict[str, Any], device: str = "cpu",
                 threads: int | None = None, table: SamplerTable | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        ckpt = load_checkpoint(engine_dir / "model.safetensors")
        self.content = ckpt.content.to(self.device).eval() if ckpt.content else None
        self.motion = ckpt.motion.to(self.device).eval()
        self.table = table or SamplerTable.from_dict(manifest["sampler"])
        self.channels = ckpt.config.image_channels
        self.tensors: dict[str, torch.Tensor] = {}

    def graphs(self) -> set[str]:
        return {"flow", "motion", "update"} | ({"content"} if self.content else set())

    def allocate(self, specs: list[BufferSpec]) -> None:
        for spec in specs:
            self.tensors[spec.name] = torch.zeros(spec.shape, dtype=torch.float32,
                                                  device=self.device)

    def write(self, name: str, value: np.ndarray) -> None:
        self.tensors[name].copy_(torch.from_numpy(np.asarray(value, np.float32)))

    def read(self, name: str) -> np.ndarray:
        return self.tensors[name].cpu().numpy().copy()

    def _get(self, ref: tuple[str, int | None]) -> torch.Tensor:
        name, row = ref
        return self.tensors[name] if row is None else self.tensors[name][row]

    def prepare(self, launch: Launch) -> Callable[[], None]:
        ins = {n: self._get(r) for n, r in launch.inputs.items()}
        outs = {n: self._get(r) for n, r in launch.outputs.items()}
        c = self.channels
        if launch.graph == "update":
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
                return {"out": self.motion.denoise(ins["x_t"], ins["t"], ins["k"], ins["flow"],
                                                   ins["x_first"])}
        else:
            def fn() -> dict[str, torch.Tensor]:
                return {"out": self.content(ins["x_t"], ins["t"])}

        @torch.no_grad()
        def run() -> None:
            for name, value in fn().items():
                outs[name].copy_(value)

        return run

    def buffer_identities(self) -> dict[str, int]:
        return {name: t.data_ptr() for name, t in self.tensors.items()}
