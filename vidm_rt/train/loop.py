"""`train`: a run as a sequence of named steps (see the package docstring)."""

from __future__ import annotations

import math
import time

from .checkpoints import finish, restore, save
from .config import TrainConfig, TrainResult
from .log import RunLog, write_preview
from .run import place, start_run
from .step import optimizer_step


def train(tc: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) training; returns the final models (rank-local, on CPU)."""
    tc.check()
    run = start_run(tc)
    start = restore(run) if resume else 0
    place(run)
    main = run.dist.is_main
    log = RunLog(run, start, progress) if main else None
    last_loss, t0 = math.nan, time.time()
    for step in range(start, tc.steps):
        last_loss, terms = optimizer_step(run, step)
        done = step + 1
        if log is None:
            continue
        log.step(done, last_loss, terms)
        if done % tc.save_every == 0 or done == tc.steps:
            save(run, done)
        if tc.preview_every and done % tc.preview_every == 0:
            write_preview(run.out / f"preview_{done:07d}.gif", run.ema, run.cfg, run.ds, tc.seed)
    if log is not None:
        log.close()
        finish(run)
    run.dist.close()
    return TrainResult(
        step=tc.steps,
        models={r: m.cpu() for r, m in run.models.items()},
        ema={r: m.cpu() for r, m in run.ema.items()},
        last_loss=last_loss,
        seconds=time.time() - t0,
    )
