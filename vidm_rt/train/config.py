"""What a training run is given (`TrainConfig`, also `vidm-rt train`'s options) and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("content", "motion")


@dataclass
class TrainConfig:
    preset: str = "tiny"
    model: str = "both"
    data: str = "moving-shapes"
    out: str = "runs/train"
    steps: int = 10_000
    batch: int = 16
    lr: float = 2e-5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    seed: int = 0
    save_every: int = 1000
    keep: int = 3
    preview_every: int = 0
    log_every: int = 50
    init: str | None = None
    device: str = "auto"
    amp: bool = True
    cond_noise: float | None = None  # None: the --init checkpoint's (0 for a preset)
    prev_input: bool = False  # True adds it; a checkpoint that has it keeps it
    cond_blur: float = 0.0  # training only: sampling sees the model's own frames unblurred

    @property
    def roles(self) -> tuple[str, ...]:
        return ROLES if self.model == "both" else (self.model,)

    # Options that must not change when a run is resumed (steps and logging may).
    FIXED = ("preset", "model", "data", "batch", "lr", "weight_decay", "grad_clip", "ema", "seed",
             "cond_noise", "prev_input", "cond_blur")

    def check(self) -> None:
        if self.model not in ("content", "motion", "both"):
            raise ValueError(f"unknown --model {self.model!r}: choose content, motion or both")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("--steps and --batch must be at least 1")
        if self.cond_blur < 0:
            raise ValueError(f"--cond-blur {self.cond_blur} must be at least 0 (pixels)")


@dataclass
class TrainResult:
    step: int
    models: dict[str, Any]       # role -> raw model (on CPU)
    ema: dict[str, Any]          # role -> EMA model (on CPU)
    last_loss: float
    seconds: float
