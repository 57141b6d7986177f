"""The video generator: reads an engine directory and runs its static schedule on a backend.

Everything is decided when the generator is built: the manifest is verified, every buffer is
allocated once, the coefficient and timestep tables are uploaded, and every launch of a frame
(flow, then per step denoiser + update) is bound. Generating then only writes the per-frame
inputs (x_T, k, conditioning frames) and the per-step noise into fixed buffers and launches.

Frame 0 comes from the content graph (or is given); frame f >= 1 from the motion graph with
frame index k(f). The released model was trained with k in [1, F-2]; past the training length
the `frame_index` policy of the export decides: "clamp" feeds k = min(f, F-2), "extrapolate"
feeds k = f (the PGN code then leaves the range it was trained on).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import noise
from ..manifest import ManifestError, load_manifest, precision_files
from ..schedule import SamplerTable, frame_index
from .plan import Launch, build_plan

BACKENDS = ("onnxruntime", "torch")
# observer(graph, step, inputs): sees a copy of a denoiser launch's inputs before it runs.
Observer = Callable[[str, int, dict[str, np.ndarray]], None]


def make_backend(name: str, engine_dir: Path, manifest: dict[str, Any], device: str,
                 threads: int | None, table: SamplerTable, precision: str = "fp32") -> Any:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"unknown device {device!r}: use cpu, cuda or cuda:N")
    if name == "onnxruntime":
        from .ort_backend import OrtBackend

        files = precision_files(manifest, precision, engine_dir)
        return OrtBackend(engine_dir, files, device, threads)
    if precision != "fp32":
        raise ValueError(f"the {name} backend runs fp32 only: use --backend onnxruntime for "
                         f"{precision}")
    if name == "torch":
        try:
            from .torch_backend import TorchBackend
        except ImportError:
            raise ValueError(
                "the torch backend needs torch: pip install 'vidm-rt[torch]'"
            ) from None
        return TorchBackend(engine_dir, manifest, device, threads, table)
    raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


class VideoGenerator:
    """Generate videos from an engine directory; see the module docstring."""

    def __init__(self, engine_dir: str | Path, backend: str = "onnxruntime", device: str = "cpu",
                 threads: int | None = None, table: SamplerTable | None = None,
                 precision: str = "fp32", observer: Observer | None = None) -> None:
        """`table` replaces the export's sampler: the graphs do not depend on it, only the
        update graph's x0 clipping does, which the table must match. `precision` picks the
        graph files from the manifest's "precisions". `observer(graph, step, inputs)` sees a
        copy of every denoiser launch's inputs before it runs (calibration records them)."""
        self.engine_dir = Path(engine_dir)
        self.manifest = load_manifest(self.engine_dir)
        m = self.manifest
        exported = SamplerTable.from_dict(m["sampler"])
        if table is not None and table.clip_x0 != exported.clip_x0:
            raise ValueError("the sampler table's x0 clipping differs from the exported update "
                             "graph's: export again with the sampler you want")
        self.table = table or exported
        self.batch, self.height, self.width = int(m["batch"]), int(m["height"]), int(m["width"])
        self.channels = int(m["config"].get("image_channels", 3))
        self.train_frames = int(m["config"]["train_frames"])
        self.default_frames = int(m.get("frames", self.train_frames))
        self.frame_index_policy = m.get("frame_index", "clamp")
        self.has_content = "content" in m["graphs"]
        self.precision = precision
        self.backend = make_backend(backend, self.engine_dir, m, device, threads, self.table,
                                    precision)
        denoisers = ("content", "motion") if self.has_content else ("motion",)
        self.plan = build_plan(self.batch, self.channels, self.height, self.width, self.table,
                               denoisers)
        self.backend.allocate(self.plan.buffers)
        self.backend.write("coef", self.table.coefficients())
        t_rows = np.repeat(self.table.model_t.astype(np.float32)[:, None], self.batch, axis=1)
        self.backend.write("t", t_rows)
        self._flow = self.backend.prepare(self.plan.flow)
        self._steps = {
            graph: [(self._prepare_denoiser(d, i, observer), self.backend.prepare(u))
                    for i, (d, u) in enumerate(launches)]
            for graph, launches in self.plan.steps.items()
        }
        self._zeros = np.zeros((self.batch, self.channels, self.height, self.width), np.float32)
        self._noisy_steps = [bool(s != 0) for s in self.table.noise_std]

    def _prepare_denoiser(self, launch: Launch, step: int,
                          observer: Observer | None) -> Callable[[], None]:
        run = self.backend.prepare(launch)
        if observer is None:
            return run

        def observed() -> None:
            inputs = {name: self.backend.read(buf) if row is None else self.backend.read(buf)[row]
                      for name, (buf, row) in launch.inputs.items()}
            observer(launch.graph, step, inputs)
            run()

        return observed

    def denoiser_launch(self, graph: str = "motion", step: int = 0) -> Callable[[], None]:
        """The bound denoiser launch of one step (for timing a single network evaluation)."""
        return self._steps[graph][step][0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def _denoise(self, graph: str, seed: int, videos: np.ndarray, frame: int,
                 on_step: Callable[[], None] | None) -> np.ndarray:
        write = self.backend.write
        write("x.0", noise.gaussian_batch(seed, videos, frame, 0, self.image_shape))
        write("x0.0", self._zeros)
        for i, (denoise, update) in enumerate(self._steps[graph]):
            denoise()
            if self._noisy_steps[i]:
                write("noise", noise.gaussian_batch(seed, videos, frame, i + 1, self.image_shape))
            update()
            if on_step is not None:
                on_step()
        return self.backend.read(self.plan.result)

    def generate(
        self,
        frames: int | None = None,
        seed: int = 0,
        first_frame: np.ndarray | None = None,
        first_video: int = 0,
        on_step: Callable[[], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield frames (B, C, H, W) float32 in [-1, 1], frame 0 first, as they finish.

        `first_frame` (C, H, W) or (B, C, H, W) replaces the content frame (image-to-video).
        Videos are numbered first_video .. first_video + B - 1 for the noise addressing.
        """
        frames = self.default_frames if frames is None else frames
        if frames < 1:
            raise ValueError("frames must be at least 1")
        videos = np.arange(first_video, first_video + self.batch)
        if first_frame is not None:
            first = np.asarray(first_frame, np.float32)
            if first.shape == self.image_shape:
                first = np.broadcast_to(first, (self.batch, *self.image_shape))
            if first.shape != (self.batch, *self.image_shape):
                raise ValueError(
                    f"first frame has shape {first.shape}; this engine needs "
                    f"{self.image_shape} or {(self.batch, *self.image_shape)}"
                )
        elif self.has_content:
            first = self._denoise("content", seed, videos, 0, on_step)
        else:
            raise ManifestError(
                f"{self.engine_dir}: this engine has no content model: give a first frame"
            )
        self.backend.write("x_first", first)
        self.backend.write("x_prev", first)
        yield np.array(first)
        for f in range(1, frames):
            k = frame_index(f, self.train_frames, self.frame_index_policy)
            self.backend.write("k", np.full((self.batch,), k, np.float32))
            self._flow()
            out = self._denoise("motion", seed, videos, f, on_step)
            self.backend.write("x_prev", out)
            yield out
