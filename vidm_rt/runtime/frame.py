"""The per-frame launch sequence, shared by every backend: run eagerly, or captured and replayed.

A frame of denoiser graph G is, in this order:

    x_cond <- x_prev + noise        (motion frames of a model with conditioning noise: the
                                     update graph on the conditioning row; vidm_rt.runtime.plan)
    flow                            (motion frames only)
    x.0    <- noise(step 0)         x_T
    x0.0   <- 0                     no previous x0 at the first step
    per step i:  G,  noise <- noise(step i + 1) (noisy steps only),  update
    x_prev <- result                (motion frames: the next frame's conditioning)
    x_first, x_prev <- result       (content frames: the motion frames' conditioning)

Every op stays on the device where the backend has one: the conditioning frames are copied
there, never through the host.

Before a frame the host writes only the per-frame inputs into fixed buffers: `k` and
`noise_base`, one row [video, frame, key] per batch row, the addresses every noise launch of the
frame reads (the key is the seed as two 32-bit words, low then high). Backends without device
noise draw it on the host from the same addresses (`NoiseAddress`, the host's copy);
device-noise backends launch the CUDA kernel, which reads `noise_base` from device memory, so a
captured CUDA graph draws the current frame's noise, for the current seeds, when it is replayed:
one capture serves every seed.

Capture and replay (`FrameProgram.run`): the first frame of a program runs eagerly, which is the
warm-up (TensorRT and torch allocate lazily on a first launch); the second is captured once; every
later frame replays the capture. Backends that cannot capture always run eagerly, and so does a
backend whose capture failed: it warns once and every program of it stays eager.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import noise
from ..schedule import SamplerTable
from .plan import BufferSpec, Launch, SchedulePlan


@dataclass(frozen=True)
class RunGraph:
    launch: Launch


@dataclass(frozen=True)
class DrawNoise:
    buffer: str
    step: int


@dataclass(frozen=True)
class ZeroBuffer:
    buffer: str


@dataclass(frozen=True)
class CopyBuffer:
    dst: str
    src: str


Op = RunGraph | DrawNoise | ZeroBuffer | CopyBuffer


def frame_ops(plan: SchedulePlan, graph: str, table: SamplerTable) -> tuple[Op, ...]:
    """The launch sequence of one frame of `graph` (content or motion); see the module docstring."""
    ops: list[Op] = []
    motion = graph == "motion"
    if motion and plan.condition is not None:
        ops += [DrawNoise("noise", noise.CONDITION_STEP), RunGraph(plan.condition)]
    if motion:
        ops.append(RunGraph(plan.flow))
    ops += [DrawNoise("x.0", 0), ZeroBuffer("x0.0")]
    for i, (denoise, update) in enumerate(plan.steps[graph]):
        ops.append(RunGraph(denoise))
        if table.noise_std[i] != 0:
            ops.append(DrawNoise("noise", i + 1))
        ops.append(RunGraph(update))
    if motion:
        ops.append(CopyBuffer("x_prev", plan.result))
    else:
        ops += [CopyBuffer("x_first", plan.result), CopyBuffer("x_prev", plan.result)]
    return tuple(ops)


class NoiseAddress:
    """The host's copy of `noise_base`: the (seed, video, frame) of each batch row's noise for
    the current frame. Rows are independent, so a row serving one request draws that request's
    noise whichever row it is and whatever the other rows serve (continuous batching); a plain
    batch is rows first_video + b of one seed at one frame."""

    def __init__(self, batch: int) -> None:
        self.seeds = [0] * batch
        self.videos = np.zeros(batch, np.uint32)
        self.frames = np.zeros(batch, np.uint32)

    def set_batch(self, seed: int, first_video: int, frame: int) -> None:
        """Every row at `seed` and `frame`, row b drawing video first_video + b."""
        for b in range(len(self.seeds)):
            self.set_row(b, seed, first_video + b, frame)

    def set_row(self, row: int, seed: int, video: int, frame: int) -> None:
        self.seeds[row] = seed
        self.videos[row], self.frames[row] = video, frame

    def as_buffer(self) -> np.ndarray:
        """`noise_base`, (B, 4) uint32: row b = [video, frame, key low, key high], the key
        being the row's seed as its low and high 32 bits (the Philox key of vidm_rt.noise)."""
        keys = np.array(self.seeds, np.uint64)
        low, high = keys & np.uint64(0xFFFFFFFF), keys >> np.uint64(32)
        return np.stack([self.videos, self.frames, low.astype(np.uint32), high.astype(np.uint32)],
                        axis=1)


class Backend(Protocol):
    """What a backend offers the generator (see ort_backend, torch_backend, tensorrt_backend)."""

    name: str
    device_noise: bool   # prepare_noise launches the CUDA kernel
    can_capture: bool    # capture() records a frame as a CUDA graph

    def make_current(self) -> None: ...   # the backend's GPU current on the calling thread
    def allocate(self, specs: list[BufferSpec]) -> None: ...
    def write(self, name: str, value: np.ndarray) -> None: ...
    def read(self, name: str) -> np.ndarray: ...
    def prepare(self, launch: Launch) -> Callable[[], None]: ...
    def prepare_zero(self, name: str) -> Callable[[], None]: ...
    def prepare_copy(self, dst: str, src: str) -> Callable[[], None]: ...
    def prepare_noise(self, name: str, step: int) -> Callable[[], None]: ...
    def capture(self, launches: Sequence[Callable[[], None]]) -> Callable[[], None]: ...
    def synchronize(self) -> None: ...
    def close(self) -> None: ...   # idempotent: frees what the backend holds


def host_noise(backend: Backend, spec: BufferSpec, step: int,
               address: NoiseAddress) -> Callable[[], None]:
    """Noise drawn with vidm_rt.noise on the host at the current `address` (one address per
    row) and written into the buffer (eager backends)."""
    shape = spec.shape[1:]

    def draw() -> None:
        backend.write(spec.name, noise.gaussian_slots(address.seeds, address.videos,
                                                      address.frames, step, shape))

    return draw


class FrameProgram:
    """One frame's ops bound to a backend, for every seed (the noise key is read from
    `noise_base`, so a capture serves every seed)."""

    def __init__(self, backend: Backend, ops: Sequence[Op], specs: dict[str, BufferSpec],
                 address: NoiseAddress, prepared: dict[Launch, Callable[[], None]],
                 cuda_graphs: bool = True) -> None:
        self.backend = backend
        self.launches: list[Callable[[], None]] = []
        self.step_ends: list[int] = []  # indices of the update launches, for progress callbacks
        for op in ops:
            if isinstance(op, RunGraph):
                if op.launch not in prepared:
                    prepared[op.launch] = backend.prepare(op.launch)
                fn = prepared[op.launch]
                if op.launch.graph == "update":
                    self.step_ends.append(len(self.launches))
            elif isinstance(op, DrawNoise):
                spec = specs[op.buffer]
                fn = (backend.prepare_noise(op.buffer, op.step) if backend.device_noise
                      else host_noise(backend, spec, op.step, address))
            elif isinstance(op, ZeroBuffer):
                fn = backend.prepare_zero(op.buffer)
            else:
                fn = backend.prepare_copy(op.dst, op.src)
            self.launches.append(fn)
        self.capturing = cuda_graphs and backend.can_capture and backend.device_noise
        self.frames_run = 0
        self.replay: Callable[[], None] | None = None

    def run(self, on_step: Callable[[], None] | None = None) -> None:
        if (self.replay is None and self.capturing and self.backend.can_capture
                and self.frames_run >= 1):
            self.replay = self._capture()
        if self.replay is not None:
            self.replay()
            if on_step is not None:
                for _ in self.step_ends:
                    on_step()
        else:
            ends = set(self.step_ends)
            for i, fn in enumerate(self.launches):
                fn()
                if on_step is not None and i in ends:
                    on_step()
        self.frames_run += 1

    def _capture(self) -> Callable[[], None] | None:
        try:
            return self.backend.capture(self.launches)
        except RuntimeError as err:
            # Capture can fail where eager launches work (an operation that is illegal while
            # capturing, too little memory for the graph): stay correct, only slower.
            self.backend.can_capture = False
            warnings.warn(f"CUDA-graph capture failed, running eager launches instead: {err}",
                          RuntimeWarning, stacklevel=4)
            return None
