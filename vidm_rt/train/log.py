"""What rank 0 shows and records while training: `train.json` (the options), `log.jsonl` (mean
loss since the previous entry, the loss terms, seconds), a progress bar, and preview GIFs."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from .run import Run


class LossLog:
    """`log.jsonl` of a training or distillation run: every `every` steps (and where the caller
    flushes) the mean loss since the previous entry, the loss terms and the run's seconds.

    A run resumed from the save at step `start` first drops the entries after it (a killed run
    logs past its last save, and those steps are trained again) and any line cut short, and its
    seconds go on from the last kept entry's: the file reads as one run, each logged step once."""

    def __init__(self, path: Path, every: int, start: int) -> None:
        kept = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and entry.get("step", 0) <= start:
                    kept.append(entry)
        with atomic_write(path) as tmp:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
        self.before = float(kept[-1].get("seconds", 0.0)) if kept else 0.0
        self.every, self.t0 = every, time.time()
        self.running: list[float] = []
        self.file = path.open("a")

    def step(self, done: int, loss: float, terms: dict[str, Any], flush: bool = False) -> None:
        """Step `done` (counted from 1) finished with `loss`."""
        self.running.append(loss)
        if done % self.every == 0 or flush:
            entry = {"step": done, "loss": float(np.mean(self.running)), **terms,
                     "seconds": round(self.before + time.time() - self.t0, 2)}
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()
            self.running = []

    def close(self) -> None:
        self.file.close()


class RunLog:
    def __init__(self, run: Run, start: int, progress: bool) -> None:
        tc, out = run.tc, run.out
        self.steps = tc.steps
        self.bar = None
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "train.json") as tmp:
            tmp.write_text(json.dumps(dataclasses.asdict(tc), indent=2))
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=tc.steps, initial=start,
                            desc=f"train {tc.model} ({run.cfg.name})", dynamic_ncols=True,
                            file=sys.stderr)
        self.losses = LossLog(out / "log.jsonl", tc.log_every, start)

    def step(self, done: int, loss: float, terms: dict[str, float]) -> None:
        """Step `done` (counted from 1) finished with `loss`."""
        self.losses.step(done, loss, terms, flush=done == self.steps)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.losses.close()


def write_preview(path: Path, ema: dict[str, Any], cfg: Any, ds: Any, seed: int) -> None:
    """Two videos of the EMA models side by side in one GIF (an .npy without Pillow)."""
    import torch

    from ..reference import generate_video
    from ..schedule import sampler_table
    from ..video import write_video

    motion = ema.get("motion")
    if motion is None:
        return
    frames = min(cfg.train_frames, 8)
    first = None
    if ema.get("content") is None:
        first = torch.from_numpy(ds.frames_at(0, [0]))
    video = generate_video(motion, sampler_table("dpmpp2m", 10), frames,
                           content=ema.get("content"), first_frame=first, seed=seed, batch=2,
                           cond_noise=cfg.cond_noise, device=next(motion.parameters()).device)
    # The two videos side by side in one file: (F, 3, H, 2W).
    side_by_side = torch.cat(list(video.cpu()), dim=-1).numpy()
    try:
        write_video(path, side_by_side, fps=8)
    except ValueError:  # no Pillow: keep the preview as an array
        write_video(path.with_suffix(".npy"), side_by_side)
