"""`distill`: a progressive distillation run (distill.py), like a training run (loop.py):
one process or torchrun DDP (ddp.py, only rank 0 writes), every random draw of step n on rank r
seeded by (seed, n, r) (batches.py), so a resumed run reproduces an uninterrupted one exactly.

The run folder (--out):
    distill.json                   the options
    log.jsonl                      mean loss per --log-every steps, per role, lr, seconds
    ckpt_<step>.safetensors        the student so far, its sampler recorded (the last --keep)
    ckpt_<step>.state.pt           its raw weights and optimizer state, for --resume
    student<N>.safetensors         the N-step student at the end of its round: the next
                                   round's teacher, and a checkpoint to export on its own
    model.safetensors              the final student (--steps)

Each round starts from the previous round's student, a fresh AdamW and a learning rate that
falls linearly from --lr towards 0 over the round.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .batches import draw_batch, step_seed
from .checkpoints import latest_state, saved_steps
from .ddp import Distributed, pick_device
from .distill import (
    ROLES,
    SAMPLER,
    DistillConfig,
    role_loss,
    round_tables,
    spacing,
    student_config,
)
from .log import LossLog


@dataclass
class DistillResult:
    step: int
    students: dict[str, Any]     # role -> the final student (on CPU)
    last_loss: float
    seconds: float


@dataclass
class _Run:
    dc: DistillConfig
    cfg: Any                     # the teacher's VIDMConfig
    ds: Any
    dist: Distributed
    students: dict[str, Any]
    wrapped: dict[str, Any]      # role -> the student as DDP runs it
    teachers: dict[str, Any] = field(default_factory=dict)
    tables: tuple[Any, Any] = (None, None)  # the round's (teacher, student) DDIM tables
    opt: Any = None

    @property
    def out(self) -> Path:
        return Path(self.dc.out)


def distill(dc: DistillConfig, resume: bool = False, progress: bool = True) -> DistillResult:
    """Run (or resume) a distillation; returns the final students (rank-local, on CPU)."""
    from ..progress import progress as bar

    dc.check()
    run = _start(dc)
    out = run.out
    if not resume and saved_steps(out):
        raise ValueError(f"{out}: holds a distillation run already: add --resume to continue "
                         "it, or choose a new --out")
    start, opt_state = _restore(run) if resume else (0, None)
    main = run.dist.is_main
    log = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "distill.json") as tmp:
            tmp.write_text(json.dumps(dataclasses.asdict(dc), indent=2))
        log = LossLog(out / "log.jsonl", dc.log_every, start)
    last_loss, t0 = math.nan, time.time()
    with bar(dc.total - start, "distill", quiet=not (progress and main)) as advance:
        for step in range(start, dc.total):
            rnd, it = dc.round_of(step)
            if it == 0 or step == start:
                _begin_round(run, rnd, resumed_inside=it != 0, opt_state=opt_state)
                advance(0, f"distill {dc.from_steps >> rnd}->{dc.rounds[rnd]} steps")
            last_loss, terms = _step(run, step, rnd, it)
            advance(1)
            done = step + 1
            if log is None:
                continue
            round_end = done % dc.iters_per_round == 0
            log.step(done, last_loss, terms, flush=round_end)
            if done % dc.save_every == 0 or round_end:
                _save(run, done)
            if round_end:
                _save_student(run, out / f"student{dc.rounds[rnd]}.safetensors", rnd, done)
    if log is not None:
        log.close()
        final = out / f"student{dc.steps}.safetensors"
        with atomic_write(out / "model.safetensors") as tmp:
            tmp.write_bytes(final.read_bytes())
    run.dist.close()
    return DistillResult(dc.total, {r: m.cpu() for r, m in run.students.items()}, last_loss,
                         time.time() - t0)


def _start(dc: DistillConfig) -> _Run:
    """The teacher checkpoint (the students start as copies of it) and the data."""
    import torch

    from ..checkpoint import load_checkpoint
    from ..data import DataError, open_dataset

    loaded = load_checkpoint(dc.checkpoint)
    cfg, spec = loaded.config, loaded.config.sampler
    if spec is not None and (spec.sampler, spec.steps, spec.spacing) != (
            SAMPLER, dc.from_steps, spacing(dc.from_steps)):
        raise ValueError(f"{dc.checkpoint}: is a student for {spec.sampler} {spec.steps} steps "
                         f"({spec.spacing}): distil it further with --from-steps {spec.steps}")
    ds = open_dataset(dc.data, cfg.train_frames, cfg.image_size, seed=dc.seed)
    if len(ds) == 0:
        raise DataError(f"{dc.data}: the dataset is empty")
    dist = Distributed(pick_device(dc.device))
    torch.manual_seed(dc.seed)
    students = {r: getattr(loaded, r).to(dist.device).train() for r in ROLES
                if getattr(loaded, r) is not None}
    wrapped = {r: dist.wrap(m) for r, m in students.items()}
    return _Run(dc, cfg, ds, dist, students, wrapped)


def _begin_round(run: _Run, rnd: int, resumed_inside: bool, opt_state: Any) -> None:
    """Teachers, tables and optimizer of round `rnd`: the teachers are the students so far, or
    when a resumed run starts inside the round, the previous round's file (the checkpoint for
    the first round) and the saved optimizer state."""
    import torch

    from ..checkpoint import load_checkpoint

    dc = run.dc
    if resumed_inside:
        source = (Path(dc.checkpoint) if rnd == 0
                  else run.out / f"student{dc.rounds[rnd - 1]}.safetensors")
        loaded = load_checkpoint(source)
        teachers = {r: getattr(loaded, r).to(run.dist.device) for r in run.students}
    else:
        teachers = {r: copy.deepcopy(m) for r, m in run.students.items()}
    run.teachers = {r: m.eval().requires_grad_(False) for r, m in teachers.items()}
    run.tables = round_tables(dc.rounds[rnd])
    params = [p for m in run.students.values() for p in m.parameters()]
    run.opt = torch.optim.AdamW(params, lr=dc.lr, weight_decay=0.0)
    if resumed_inside:
        run.opt.load_state_dict(opt_state)


def _step(run: _Run, step: int, rnd: int, it: int) -> tuple[float, dict[str, float]]:
    """One AdamW update of every student on its role's batch."""
    import numpy as np
    import torch
    from torch.nn.utils import clip_grad_norm_

    dc, device = run.dc, run.dist.device
    seed = step_seed(dc.seed, step, run.dist.rank)
    torch.manual_seed(seed)  # dropout, if a preset enables it
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng([dc.seed, step, run.dist.rank])
    for group in run.opt.param_groups:
        group["lr"] = dc.lr * (1.0 - it / dc.iters_per_round)
    total = torch.zeros((), device=device)
    terms: dict[str, float] = {}
    for role in run.students:
        loss = role_loss(run.wrapped[role], run.teachers[role], role,
                         draw_batch(role, run.ds, rng, dc.batch), gen, run.tables,
                         run.cfg.cond_noise, device).mean()
        total = total + loss
        terms[f"{role}_loss"] = float(loss.detach())
    run.opt.zero_grad(set_to_none=True)
    total.backward()
    clip_grad_norm_([p for m in run.students.values() for p in m.parameters()], dc.grad_clip)
    run.opt.step()
    return float(total.detach()), {**terms, "round": rnd, "student_steps": dc.rounds[rnd],
                                   "lr": run.opt.param_groups[0]["lr"]}


def _restore(run: _Run) -> tuple[int, Any]:
    """Load the latest save of the run folder's students; returns its step and optimizer
    state (checkpoints.latest_state refuses a changed DistillConfig.FIXED option)."""
    start, state = latest_state(run.out, "distill_config", run.dc)
    for role, m in run.students.items():
        m.load_state_dict(state["students"][role])
    return start, state["optimizer"]


def _save(run: _Run, step: int) -> None:
    """ckpt_<step>.safetensors and .state.pt, then drop the saves older than the last --keep."""
    import torch

    out, dc = run.out, run.dc
    state = {"step": step, "distill_config": dataclasses.asdict(dc),
             "students": {r: {k: v.cpu() for k, v in m.state_dict().items()}
                          for r, m in run.students.items()},
             "optimizer": run.opt.state_dict()}
    with atomic_write(out / f"ckpt_{step:07d}.state.pt") as tmp:
        torch.save(state, tmp)
    _save_student(run, out / f"ckpt_{step:07d}.safetensors", dc.round_of(step - 1)[0], step)
    for old in saved_steps(out)[:-dc.keep]:
        for suffix in (".state.pt", ".safetensors"):
            (out / f"ckpt_{old:07d}{suffix}").unlink(missing_ok=True)


def _save_student(run: _Run, path: Path, rnd: int, step: int) -> None:
    """A vidm-rt checkpoint of the students, with round `rnd`'s sampler in its config."""
    from ..checkpoint import save_checkpoint

    cpu = {r: copy.deepcopy(m).cpu() for r, m in run.students.items()}
    meta = {"vidm_rt.step": str(step),
            "vidm_rt.distill": json.dumps(dataclasses.asdict(run.dc))}
    cfg = student_config(run.cfg, run.dc.rounds[rnd], run.dc.sample_eta)
    save_checkpoint(path, cfg, cpu.get("content"), cpu.get("motion"), metadata=meta)
