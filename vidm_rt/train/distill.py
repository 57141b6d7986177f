"""Progressive distillation (Salimans & Ho, ICLR 2022) of both denoisers into a DDIM student.

A round halves the sampler's steps: the student, initialised from the teacher, learns to make in
ONE deterministic DDIM step (eta 0) what the teacher makes in TWO. Rounds run from
`from_steps` teacher steps down to the `steps` of the final student; each round's student is
the next round's teacher. Timesteps are the runtime's `linspaceN` spacing (the N largest of
round(linspace(0, 999, N + 1))): halving N keeps every other timestep, so student step i at
t_2i spans exactly teacher steps 2i and 2i + 1 (t_2i -> t_2i+1 -> t_2i+2), and the last student
step, like the runtime's, lands on clean data. `sampler_table("ddim", N, spacing="linspaceN")`
gives both the coefficients used here and the table export writes, so the student runs at
inference exactly the steps it was trained on.

Per sample, with z = alpha x + sigma eps (x a real frame, the student step i uniform):
    z'  = teacher DDIM step 2i from z,  z'' = teacher DDIM step 2i + 1 from z'
    x~  = (z'' - (sigma''/sigma) z) / (alpha'' - (sigma''/sigma) alpha)
the x0 whose single DDIM step from z lands on z'' (alpha'', sigma'' of the student's next state;
with eta 0 those ratios are the table's coef_x and coef_x0). The loss is
max(SNR, 1) |x0_student - x~|^2 (the paper's truncated SNR weighting: eps-space error, clipped
at high noise), with x0_student = (z - sigma eps_student) / alpha. The student still outputs
[eps, v]; DDIM reads eps only. The teacher's x0 is clipped to [-1, 1] at each step, as the
runtime's DDIM does.

The motion model is conditioned on real (first, previous, k) from the data, exactly as in
training (batches.py), previous frames noised per the config's cond_noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ROLES = ("content", "motion")
SAMPLER = "ddim"


@dataclass
class DistillConfig:
    checkpoint: str = ""
    out: str = "runs/distill"
    steps: int = 4
    from_steps: int = 64
    iters_per_round: int = 2000
    batch: int = 16
    lr: float = 5e-5
    grad_clip: float = 1.0
    data: str = "moving-shapes"
    seed: int = 0
    save_every: int = 500
    keep: int = 3
    log_every: int = 50
    device: str = "auto"
    # The DDIM eta the student samples with (recorded in its config, not used in training): the
    # targets are deterministic, but on a model whose own steps drift, eta 1 (fresh noise at
    # every step, as the ancestral sampler) keeps shapes where eta 0 carries every error on.
    sample_eta: float = 1.0

    # Options that must not change when a run is resumed (saving and logging may).
    FIXED = ("checkpoint", "steps", "from_steps", "iters_per_round", "batch", "lr", "grad_clip",
             "data", "seed")

    def check(self) -> None:
        """ValueError with the option to fix."""
        if self.steps < 1 or self.from_steps < 2:
            raise ValueError("--steps must be at least 1 and --from-steps at least 2")
        ratio = self.from_steps // self.steps
        if self.from_steps % self.steps or ratio < 2 or ratio & (ratio - 1):
            raise ValueError(f"--from-steps {self.from_steps} must be --steps {self.steps} times "
                             "a power of two (2, 4, 8, ...): each round halves the steps")
        if self.from_steps > 999:
            raise ValueError(f"--from-steps {self.from_steps}: at most 999 steps of the "
                             "1000-step process (spacing linspaceN)")
        if not self.sample_eta >= 0:
            raise ValueError(f"--sample-eta {self.sample_eta} must be at least 0")
        if min(self.iters_per_round, self.batch, self.save_every, self.keep,
               self.log_every) < 1:
            raise ValueError("--iters-per-round, --batch, --save-every, --keep and --log-every "
                             "must be at least 1")

    @property
    def rounds(self) -> list[int]:
        """The student's steps in each round: from_steps / 2, from_steps / 4, ..., steps."""
        out, n = [], self.from_steps
        while n > self.steps:
            n //= 2
            out.append(n)
        return out

    @property
    def total(self) -> int:
        return len(self.rounds) * self.iters_per_round

    def round_of(self, step: int) -> tuple[int, int]:
        """(round, iteration within it) of global step `step` (from 0)."""
        return divmod(step, self.iters_per_round)


def spacing(steps: int) -> str:
    return f"linspace{steps}"


def round_tables(student_steps: int) -> tuple[Any, Any]:
    """The (teacher, student) DDIM tables of a round: 2N and N steps, nested timesteps."""
    import numpy as np

    from ..schedule import sampler_table

    teacher = sampler_table(SAMPLER, 2 * student_steps, spacing=spacing(2 * student_steps))
    student = sampler_table(SAMPLER, student_steps, spacing=spacing(student_steps))
    if not np.array_equal(student.model_t, teacher.model_t[::2]):
        raise ValueError(f"the {student_steps}-step timesteps are not every other one of the "
                         f"{2 * student_steps}-step timesteps: choose another --from-steps")
    return teacher, student


def student_config(cfg: Any, student_steps: int, eta: float) -> Any:
    """The teacher's config with the student's sampler recorded (export uses it by default)."""
    from ..config import SamplerSpec

    return dataclasses.replace(cfg, sampler=SamplerSpec(SAMPLER, student_steps,
                                                        spacing(student_steps), eta))


def _at(table: Any, name: str, idx: Any, like: Any) -> Any:
    """Column `name` of the table at per-sample step indices, shaped (B, 1, 1, 1) like `like`."""
    import torch

    col = torch.tensor(getattr(table, name), dtype=torch.float64)[idx.cpu()]
    return col.to(like.device, like.dtype).view(-1, 1, 1, 1)


def ddim_step(table: Any, idx: Any, x: Any, eps: Any) -> Any:
    """The table's update (vidm_rt.schedule.apply_update) with eta 0, each sample at its own
    step idx[b]: x_next = a clip(r x - m eps) + b x."""
    x0 = _at(table, "sqrt_recip_acp", idx, x) * x - _at(table, "sqrt_recipm1_acp", idx, x) * eps
    if table.clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
    return _at(table, "coef_x0", idx, x) * x0 + _at(table, "coef_x", idx, x) * x


def _model_t(table: Any, idx: Any, device: Any) -> Any:
    import torch

    return torch.tensor(table.model_t, dtype=torch.float32)[idx.cpu()].to(device)


def two_step_target(teacher: Any, tables: tuple[Any, Any], idx: Any, z: Any,
                    cond: tuple[Any, ...], channels: int) -> Any:
    """x~: the x0 whose one student DDIM step from z lands where two teacher steps do."""
    import torch

    t_table, s_table = tables
    with torch.no_grad():
        z1 = z
        for j in (2 * idx, 2 * idx + 1):
            eps = teacher(z1, _model_t(t_table, j, z.device), *cond)[:, :channels]
            z1 = ddim_step(t_table, j, z1, eps)
        return (z1 - _at(s_table, "coef_x", idx, z) * z) / _at(s_table, "coef_x0", idx, z)


def role_loss(student: Any, teacher: Any, role: str, b: dict[str, Any], gen: Any,
              tables: tuple[Any, Any], cond_noise: float, device: Any) -> Any:
    """Per-sample loss (B,) of one denoiser's student on its batch `b` (batches.draw_batch)."""
    import torch

    from .batches import noisy_condition

    s_table = tables[1]
    x = torch.from_numpy(b["frame"]).to(device)
    idx = torch.randint(0, s_table.steps, (x.shape[0],), generator=gen)
    eps = torch.randn(x.shape, generator=gen).to(device)
    cond: tuple[Any, ...] = ()
    if role == "motion":
        prev = b["prev"] if cond_noise <= 0 else noisy_condition(b["prev"], cond_noise, gen)
        cond = tuple(torch.from_numpy(a).to(device) for a in (b["k"], prev, b["first"]))
    r = _at(s_table, "sqrt_recip_acp", idx, x)
    m = _at(s_table, "sqrt_recipm1_acp", idx, x)
    z = (x + m * eps) / r  # alpha x + sigma eps, with alpha = 1/r and sigma = m/r
    channels = x.shape[1]
    target = two_step_target(teacher, tables, idx, z, cond, channels)
    eps_s = student(z, _model_t(s_table, idx, device), *cond)[:, :channels]
    x0_s = r * z - m * eps_s
    weight = torch.clamp(1.0 / m.flatten() ** 2, min=1.0)  # max(SNR, 1)
    return weight * ((x0_s - target) ** 2).mean(dim=(1, 2, 3))
