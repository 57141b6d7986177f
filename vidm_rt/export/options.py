"""What `vidm-rt export` makes: its options, the checks every graph must pass, and the revision
that marks which graphs an export of given options holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import SamplerSpec
from ..schedule import FRAME_INDEX_POLICIES
from .fp16 import FP32_TAIL_CONVS

# Max |onnx - torch| / (1 + max |torch|) allowed per graph (float32 on both sides).
TOLERANCE = {"content": 1e-3, "flow": 1e-3, "motion": 1e-3, "update": 1e-5,
             "content.fp16": 1e-2, "motion.fp16": 1e-2}
# Graphs that can have an FP16 variant (ExportOptions.fp16_graphs). The flow runs once per frame
# (under 1% of a frame's time on the CPU), and in FP16 its error on real frames is four times
# the denoisers' per step (docs/precision.md): it runs FP32 in every precision, like
# the sampler update.
FP16_GRAPHS = ("content", "motion")
# The default: the content model runs once per video (about 4% of a 16-frame video's denoiser
# FLOPs on the bundled model), and its FP16 error can make frame 0 another sample, which changes
# the whole video. In FP32 it left half as many FP16 videos drifting off (bench/RESULTS.md).
DEFAULT_FP16_GRAPHS = ("motion",)
# Which graphs an export writes for a given checkpoint and options; raised when that changes,
# so cached exports (the bundled demo's) are made again. 2: no FP16 flow graph. 3: FP16 graphs
# run only convolutions and products in FP16, outside the residual stream (export/fp16.py).
# 4: the last convs before the output head FP32 too (ExportOptions.fp16_fp32_tail).
# 5: the default sampler is ancestral 20.
EXPORT_REVISION = 5


# The sampler of an export when neither the options nor the checkpoint's config name one. By
# both judges (docs/quality.md) ancestral 20 is of equal quality to the reference sampler
# (ancestral 100); DPM-Solver++ 20, about as fast, makes twice the pop-ins: the injected noise
# corrects the motion model's one-step errors that a deterministic sampler carries on.
DEFAULT_SAMPLER, DEFAULT_STEPS = "ancestral", 20


def export_sampler(recorded: SamplerSpec | None, sampler: str | None, steps: int | None,
                   eta: float | None) -> tuple[str, int, float, str | None]:
    """(sampler, steps, eta, spacing) of an export: the options given win; the others come from
    the checkpoint's recorded sampler (`recorded`, a distilled student's), else the default.
    The recorded eta and spacing go only with the recorded sampler, and the spacing only with
    its own number of steps too (it selects that many timesteps)."""
    kind = sampler or (recorded.sampler if recorded else DEFAULT_SAMPLER)
    same = recorded is not None and kind == recorded.sampler
    n = steps or (recorded.steps if recorded else DEFAULT_STEPS)
    e = eta if eta is not None else (recorded.eta if same else 0.0)
    spacing = recorded.spacing if same and n == recorded.steps else None
    return kind, n, e, spacing


class ExportError(ValueError):
    """The export failed a check; nothing was written."""


@dataclass
class ExportOptions:
    name: str
    out_dir: Path = Path("export")
    batch: int = 1
    frames: int | None = None          # default video length; None = the training length
    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS
    eta: float = 0.0
    spacing: str | None = None         # timesteps (schedule.space_timesteps); None: the default
    opset: int = 18
    frame_index: str = "clamp"
    height: int | None = None
    width: int | None = None
    fp16_weights: bool = False         # round every weight to FP16 first (pipeline.py)
    fp16_graphs: tuple[str, ...] = DEFAULT_FP16_GRAPHS  # denoisers with an FP16 graph (fp16 runs)
    fp16_fp32_tail: int = FP32_TAIL_CONVS  # last convs before the output head kept FP32 there

    def check(self) -> None:
        """ExportError for options that no checkpoint can be exported with."""
        if self.frame_index not in FRAME_INDEX_POLICIES:
            raise ExportError(f"unknown frame index policy {self.frame_index!r}: "
                              f"choose {' or '.join(FRAME_INDEX_POLICIES)}")
        if self.batch < 1:
            raise ExportError("batch must be at least 1")
        odd = sorted(set(self.fp16_graphs) - set(FP16_GRAPHS))
        if odd or not self.fp16_graphs:
            raise ExportError(f"FP16 graphs {', '.join(odd) or '(none)'}: choose one or both of "
                              f"{', '.join(FP16_GRAPHS)} (the flow and the update run FP32 in "
                              "every precision)")
        if self.fp16_fp32_tail < 0:
            raise ExportError(f"fp16_fp32_tail {self.fp16_fp32_tail}: give 0 or more convs")
