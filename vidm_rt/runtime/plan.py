"""The static schedule of a video: every buffer and every graph launch, fixed before the first.

Buffers (B videos, C channels, H x W, S steps):
    x.0, x.1        (B, C, H, W)   the sample, ping-ponged: step i reads x.(i%2), writes the other
    x0.0, x0.1      (B, C, H, W)   the x0 prediction, ping-ponged the same way (DPM-Solver state)
    model_out       (B, 2C, H, W)  eps and v from the denoiser
    noise           (B, C, H, W)   the noise of the current step
    x_first, x_prev (B, C, H, W)   the motion model's conditioning frames
    flow            (B, 2, H, W)   flow(x_first, x_prev), computed once per frame; with the
                                   config's prev_input (B, 2 + C, H, W): [flow, x_prev]
    k               (B,)           frame index fed to PGN
    noise_base      (B, 4) uint32  row b = [video, frame, key low, key high]: the noise address of
                                   row b at the current frame (the key is the seed's two halves)
    coef            (S, 7)         table: row i = step i's update coefficients
    t               (S, B)         table: row i = step i's model timestep

With conditioning noise (a model trained with `--cond-noise`, `config.cond_noise` in the
manifest) a motion frame starts with one more update launch, on the extra coef row S:
    x_cond          (B, C, H, W)   x_prev + cond_noise * noise(CONDITION_STEP), the flow's input
(coefficients a = c = r = m = h = 0, b = 1, s = cond_noise: the update graph computes exactly
x + s * noise, as the reference does).

A launch binds each graph input and output to a buffer or to one row of a table buffer (on a GPU
a row is the table's device address plus i row sizes). A frame is: (flow), then per step
(denoiser, update); its result is x.(S%2). `final_steps[d] = K` makes the last K steps of
denoiser d launch its final-steps graph "d.final" (same inputs and outputs; vidm_rt.manifest).
`host` marks the buffers the host writes or reads (per frame or once): the only ones that need
host staging, or mapped memory with --zero-copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..manifest import final_graph
from ..schedule import COEFFICIENT_NAMES, SamplerTable

Ref = tuple[str, int | None]  # (buffer name, table row or None)


@dataclass(frozen=True)
class BufferSpec:
    name: str
    shape: tuple[int, ...]
    table: bool = False  # launches bind single rows of it
    dtype: str = "float32"
    host: bool = False   # written or read by the host

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self.shape[1:] if self.table else self.shape

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def row_nbytes(self) -> int:
        return math.prod(self.row_shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Launch:
    graph: str
    inputs: dict[str, Ref] = field(hash=False)
    outputs: dict[str, Ref] = field(hash=False)


@dataclass
class SchedulePlan:
    buffers: list[BufferSpec]
    flow: Launch
    steps: dict[str, list[tuple[Launch, Launch]]]  # denoiser graph -> per step (denoise, update)
    result: str
    condition: Launch | None = None  # x_cond <- x_prev + cond_noise * noise (module docstring)

    def buffer(self, name: str) -> BufferSpec:
        return next(b for b in self.buffers if b.name == name)


def coefficient_rows(table: SamplerTable, cond_noise: float = 0.0) -> np.ndarray:
    """The `coef` table: the sampler's S rows, then the conditioning row when there is one."""
    rows = table.coefficients()
    if not cond_noise:
        return rows
    extra = np.zeros((1, len(COEFFICIENT_NAMES)), rows.dtype)
    extra[0, COEFFICIENT_NAMES.index("coef_x")] = 1.0
    extra[0, COEFFICIENT_NAMES.index("noise_std")] = cond_noise
    return np.concatenate([rows, extra])


def build_plan(batch: int, channels: int, height: int, width: int,
               table: SamplerTable, denoisers: tuple[str, ...],
               final_steps: dict[str, int] | None = None,
               cond_noise: float = 0.0, cond_channels: int = 2) -> SchedulePlan:
    img = (batch, channels, height, width)
    s = table.steps
    final_steps = final_steps or {}
    result = f"x.{s % 2}"
    buffers = [
        BufferSpec("x.0", img, host=result == "x.0"), BufferSpec("x.1", img, host=result == "x.1"),
        BufferSpec("x0.0", img), BufferSpec("x0.1", img),
        BufferSpec("model_out", (batch, 2 * channels, height, width)),
        BufferSpec("noise", img),
        BufferSpec("x_first", img, host=True), BufferSpec("x_prev", img, host=True),
        BufferSpec("flow", (batch, cond_channels, height, width)),
        BufferSpec("k", (batch,), host=True),
        BufferSpec("noise_base", (batch, 4), dtype="uint32", host=True),
        BufferSpec("coef", (s + bool(cond_noise), len(COEFFICIENT_NAMES)), table=True,
                   host=True),
        BufferSpec("t", (s, batch), table=True, host=True),
    ]
    condition = None
    if cond_noise:
        buffers.append(BufferSpec("x_cond", img))
        # x0.1 takes the (zero) x0 output: step 0 writes it again before anything reads it.
        condition = Launch(
            "update",
            {"x": ("x_prev", None), "model_out": ("model_out", None), "coef": ("coef", s),
             "noise": ("noise", None), "x0_prev": ("x0.0", None)},
            {"x_next": ("x_cond", None), "x0": ("x0.1", None)})
    flow = Launch("flow", {"x_first": ("x_first", None),
                           "x_prev": ("x_cond" if cond_noise else "x_prev", None)},
                  {"flow": ("flow", None)})
    steps: dict[str, list[tuple[Launch, Launch]]] = {}
    for graph in denoisers:
        per_step = []
        for i in range(s):
            cur, nxt = f"{i % 2}", f"{(i + 1) % 2}"
            inputs: dict[str, Ref] = {"x_t": (f"x.{cur}", None), "t": ("t", i)}
            if graph == "motion":
                inputs.update(k=("k", None), flow=("flow", None), x_first=("x_first", None))
            name = final_graph(graph) if i >= s - final_steps.get(graph, 0) else graph
            denoise = Launch(name, inputs, {"out": ("model_out", None)})
            update = Launch(
                "update",
                {"x": (f"x.{cur}", None), "model_out": ("model_out", None), "coef": ("coef", i),
                 "noise": ("noise", None), "x0_prev": (f"x0.{cur}", None)},
                {"x_next": (f"x.{nxt}", None), "x0": (f"x0.{nxt}", None)},
            )
            per_step.append((denoise, update))
        steps[graph] = per_step
    return SchedulePlan(buffers, flow, steps, result=result, condition=condition)
