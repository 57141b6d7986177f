"""The video generator: reads an engine directory and runs its static schedule on a backend.

Everything is decided when the generator is built: the manifest is verified, every buffer is
allocated once, the coefficient and timestep tables are uploaded, and every launch of a frame
(flow, then per step denoiser + update) is bound. Generating then only writes the per-frame
inputs (k, the noise address and seed; the first frame once) into fixed buffers and runs the
frame's launch sequence (`frame.py`): eagerly, or as a captured CUDA graph on backends that can,
one per denoiser graph whatever the seed.

Frame 0 comes from the content graph (or is given); frame f >= 1 from the motion graph with
frame index k(f). The released model was trained with k in [1, F-2]; past the training length
the `frame_index` policy of the export decides: "clamp" feeds k = min(f, F-2), "extrapolate"
feeds k = f (the PGN code then leaves the range it was trained on).

On a GPU a frame stays on the device from its first launch to its last: the host waits for the
stream once per frame, when it reads the finished frame to hand it to the caller.

Lifetime: a generator owns its backend's memory, sessions, graphs and streams until close()
(or the end of a `with VideoGenerator(...) as gen:` block); a failed construction frees what
it had made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..manifest import (
    PRECISIONS,
    Manifest,
    ManifestError,
    final_steps,
    load_manifest,
    precision_files,
    require_kind,
)
from ..schedule import SamplerTable, frame_index
from .frame import Backend, FrameProgram, NoiseAddress, frame_ops
from .lifetime import Closing
from .plan import Launch, build_plan, coefficient_rows

BACKENDS = ("onnxruntime", "torch", "tensorrt")
# observer(graph, step, inputs): sees a copy of a denoiser launch's inputs before it runs.
Observer = Callable[[str, int, dict[str, np.ndarray]], None]


@dataclass
class RuntimeOptions:
    """How a backend runs the schedule (the schedule itself comes from the manifest).

    precision: onnxruntime: which graphs of the export's "precisions" run (None = fp32);
        torch: "fp16" = FP16 autocast for the networks on CUDA (the update stays FP32);
        tensorrt: must match the precision the engine was built with; None = the engine's.
    cuda_graphs: capture each frame once and replay it (tensorrt, torch on CUDA).
    zero_copy: tensorrt: host-visible buffers in mapped host memory (Jetson's shared DRAM).
    emulate_fp16: onnxruntime: run each graph rewritten by vidm_rt.precision.emulate_fp16, every
        FP16 tensor rounded as an FP16 engine rounds it (the CPU EP skips most of that
        rounding); needs the onnx package. For measuring FP16 quality, not for speed.
    """

    precision: str | None = None
    cuda_graphs: bool = True
    zero_copy: bool = False
    emulate_fp16: bool = False


def make_backend(name: str, engine_dir: Path, manifest: Manifest, device: str,
                 threads: int | None, table: SamplerTable, options: RuntimeOptions) -> Backend:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"unknown device {device!r}: use cpu, cuda or cuda:N")
    if options.precision is not None and options.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {options.precision!r}: choose fp32, fp16 or int8")
    if name == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(engine_dir, manifest, device, options)
    require_kind(manifest, "onnx", engine_dir, name)
    if manifest.torch_only and name != "torch":
        raise ManifestError(f"{engine_dir} holds only the torch model (no graphs): run it with "
                            "--backend torch, or export the checkpoint with `vidm-rt export`")
    if name == "onnxruntime":
        from .ort_backend import OrtBackend

        files = precision_files(manifest, options.precision or "fp32", engine_dir)
        return OrtBackend(engine_dir, files, device, threads, options.emulate_fp16)
    if name == "torch":
        try:
            from .torch_backend import TorchBackend
        except ImportError:
            raise ValueError(
                "the torch backend needs torch: pip install 'vidm-rt[torch]'"
            ) from None
        return TorchBackend(engine_dir, manifest, device, threads, table, options)
    raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


class VideoGenerator(Closing):
    """Generate videos from an engine directory; see the module docstring."""

    def __init__(self, engine_dir: str | Path, backend: str = "onnxruntime", device: str = "cpu",
                 threads: int | None = None, table: SamplerTable | None = None,
                 options: RuntimeOptions | None = None, observer: Observer | None = None) -> None:
        """`table` replaces the export's sampler: the graphs do not depend on it, only the
        update graph's x0 clipping does, which the table must match. `observer(graph, step,
        inputs)` sees a copy of every denoiser launch's inputs before it runs (calibration
        records them; eager backends only)."""
        self.engine_dir = Path(engine_dir)
        self.manifest = load_manifest(self.engine_dir)
        m = self.manifest
        exported = m.sampler
        if table is not None and table.clip_x0 != exported.clip_x0:
            raise ValueError("the sampler table's x0 clipping differs from the exported update "
                             "graph's: export again with the sampler you want")
        self.table = table or exported
        self.batch, self.height, self.width = m.batch, m.height, m.width
        self.channels = m.config.image_channels
        self.train_frames = m.config.train_frames
        self.default_frames = m.default_frames
        self.frame_index_policy = m.frame_index
        self.has_content = m.has_content
        self.options = options or RuntimeOptions()
        self._programs: dict[str, FrameProgram] = {}
        self._prepared: dict[Launch, Callable[[], None]] = {}
        self.backend = make_backend(backend, self.engine_dir, m, device, threads, self.table,
                                    self.options)
        # The torch backend runs the checkpoint, not the graphs: it has no final-steps graphs.
        self.final_steps = {} if backend == "torch" else final_steps(m, self.options.precision)
        try:
            self._bind(observer)
        except BaseException:
            self.close()
            raise

    def _bind(self, observer: Observer | None) -> None:
        """Allocate the buffers, upload the tables and bind the launches (see the module
        docstring)."""
        denoisers = ("content", "motion") if self.has_content else ("motion",)
        config = self.manifest.config
        cond_noise = config.cond_noise
        self.plan = build_plan(self.batch, self.channels, self.height, self.width, self.table,
                               denoisers, self.final_steps, cond_noise, config.cond_channels)
        self.backend.allocate(self.plan.buffers)
        self.backend.write("coef", coefficient_rows(self.table, cond_noise))
        t_rows = np.repeat(self.table.model_t.astype(np.float32)[:, None], self.batch, axis=1)
        self.backend.write("t", t_rows)
        self._specs = {spec.name: spec for spec in self.plan.buffers}
        self._ops = {graph: frame_ops(self.plan, graph, self.table) for graph in denoisers}
        if observer is not None:
            if self.backend.can_capture and self.options.cuda_graphs:
                raise ValueError("observing denoiser inputs needs eager launches: "
                                 "set cuda_graphs=False")
            for launches in self.plan.steps.values():
                for step, (denoise, _) in enumerate(launches):
                    self._prepared[denoise] = self._observed(denoise, step, observer)
        # One program (and capture) per denoiser graph: the seed travels in noise_base.
        self._address = NoiseAddress(self.batch)

    def program(self, graph: str) -> FrameProgram:
        """The frame program of a denoiser graph, bound (and later captured) once for every seed."""
        if graph not in self._programs:
            self._programs[graph] = FrameProgram(self.backend, self._ops[graph], self._specs,
                                                 self._address, self._prepared,
                                                 self.options.cuda_graphs)
        return self._programs[graph]

    def _observed(self, launch: Launch, step: int, observer: Observer) -> Callable[[], None]:
        run = self.backend.prepare(launch)

        def observed() -> None:
            inputs = {name: self.backend.read(buf) if row is None else self.backend.read(buf)[row]
                      for name, (buf, row) in launch.inputs.items()}
            observer(launch.graph, step, inputs)
            run()

        return observed

    def denoiser_launch(self, graph: str = "motion", step: int = 0) -> Callable[[], None]:
        """The bound denoiser launch of one step (for timing a single network evaluation)."""
        launch = self.plan.steps[graph][step][0]
        if launch not in self._prepared:
            self._prepared[launch] = self.backend.prepare(launch)
        return self._prepared[launch]

    def make_current(self) -> None:
        """Make the generator's GPU current on the calling thread. CUDA's current device is
        per host thread and the generator sets it only on the thread that built it: another
        thread that runs it (a server's worker) calls this first, else its launches go to
        device 0. A no-op on the CPU."""
        self.backend.make_current()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def _denoise(self, graph: str, seed: int, first_video: int, frame: int,
                 on_step: Callable[[], None] | None) -> np.ndarray:
        self._address.set_batch(seed, first_video, frame)
        return self._run_addressed(graph, on_step)

    def _run_addressed(self, graph: str, on_step: Callable[[], None] | None) -> np.ndarray:
        self.backend.write("noise_base", self._address.as_buffer())
        self.program(graph).run(on_step)
        return self.backend.read(self.plan.result)

    def frame_rows(self, graph: str, rows: Sequence[tuple[int, int, int]],
                   on_step: Callable[[], None] | None = None) -> np.ndarray:
        """One frame of `graph` ("content" or "motion") for the whole batch, row b at its own
        (seed, video, frame) = rows[b] (motion: with that frame's index k): the rows may serve
        different requests at different frames (continuous batching, vidm_rt.serve). Motion
        reads x_first and x_prev as the caller wrote them. Returns (B, C, H, W)."""
        if len(rows) != self.batch:
            raise ValueError(f"{len(rows)} row addresses for a batch of {self.batch}")
        for b, (seed, video, frame) in enumerate(rows):
            self._address.set_row(b, seed, video, frame)
        if graph == "motion":
            k = [frame_index(max(frame, 1), self.train_frames, self.frame_index_policy)
                 for _, _, frame in rows]
            self.backend.write("k", np.array(k, np.float32))
        return self._run_addressed(graph, on_step)

    def _check_address(self, seed: int, first_video: int) -> None:
        if not 0 <= seed < 2**64:
            raise ValueError("seed must be an integer in [0, 2**64)")
        if first_video < 0 or first_video + self.batch > 2**32:
            raise ValueError("video numbers must lie in [0, 2**32)")

    def _batch_frame(self, what: str, frame: np.ndarray) -> np.ndarray:
        """(C, H, W) broadcast over the batch, or (B, C, H, W) as given."""
        x = np.asarray(frame, np.float32)
        if x.shape == self.image_shape:
            x = np.broadcast_to(x, (self.batch, *self.image_shape))
        if x.shape != (self.batch, *self.image_shape):
            raise ValueError(f"{what} has shape {x.shape}; this engine needs "
                             f"{self.image_shape} or {(self.batch, *self.image_shape)}")
        return x

    def _motion(self, seed: int, first_video: int, frame: int,
                on_step: Callable[[], None] | None) -> np.ndarray:
        k = frame_index(frame, self.train_frames, self.frame_index_policy)
        self.backend.write("k", np.full((self.batch,), k, np.float32))
        return self._denoise("motion", seed, first_video, frame, on_step)

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
        self._check_address(seed, first_video)
        if first_frame is not None:
            first = self._batch_frame("first frame", first_frame)
            self.backend.write("x_first", first)
            self.backend.write("x_prev", first)
        elif self.has_content:
            # The content frame also sets x_first and x_prev, on the device.
            first = self._denoise("content", seed, first_video, 0, on_step)
        else:
            raise ManifestError(
                f"{self.engine_dir}: this engine has no content model: give a first frame "
                "(--first-frame IMAGE)"
            )
        yield np.array(first)
        for f in range(1, frames):
            yield self._motion(seed, first_video, f, on_step)

    def motion_frame(self, frame: int, first: np.ndarray, previous: np.ndarray, seed: int = 0,
                     first_video: int = 0,
                     on_step: Callable[[], None] | None = None) -> np.ndarray:
        """Frame `frame` (>= 1) of the videos, (B, C, H, W), from the given first and previous
        frames ((C, H, W) or (B, C, H, W)) instead of the generator's own: the same noise and
        frame index as `generate` uses for that frame. Given `generate`'s own frames it returns
        `generate`'s frame; given another generator's, it measures one autoregressive step in
        isolation (`vidm-rt quality`'s teacher-forced PSNR)."""
        if frame < 1:
            raise ValueError("motion frames are numbered from 1 (frame 0 is the first frame)")
        self._check_address(seed, first_video)
        self.backend.write("x_first", self._batch_frame("first frame", first))
        self.backend.write("x_prev", self._batch_frame("previous frame", previous))
        return self._motion(seed, first_video, frame, on_step)

    def close(self) -> None:
        """Free the backend's memory, graphs, streams and sessions (idempotent; also called
        when construction fails). The generator cannot be used afterwards."""
        self._programs.clear()
        self._prepared.clear()
        backend = self.__dict__.pop("backend", None)
        if backend is not None:
            backend.close()
