"""A run folder's checkpoints. For the last `--keep` saves:
    ckpt_<step>.safetensors   EMA weights: a vidm-rt checkpoint (sample / export use these)
    ckpt_<step>.state.pt      raw weights and optimizer state, for --resume
and at the end `model.safetensors`, the final EMA weights."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .run import Run


def saved_steps(out: Path) -> list[int]:
    """Steps with both files saved, oldest first."""
    steps = []
    for p in out.glob("ckpt_*.state.pt"):
        m = re.fullmatch(r"ckpt_(\d+)\.state\.pt", p.name)
        if m and (out / f"ckpt_{m[1]}.safetensors").exists():
            steps.append(int(m[1]))
    return sorted(steps)


def latest_state(out: Path, config_key: str, config: Any) -> tuple[int, dict[str, Any]]:
    """The step and state.pt of the latest save in run folder `out`. Refuses a change of an
    option that would make the resumed steps compute something else (`config.FIXED`, compared
    with the saved `state[config_key]`; an option the saved run lacks takes its default)."""
    import torch

    saved = saved_steps(out)
    if not saved:
        raise ValueError(f"{out}: nothing to resume (no ckpt_*.state.pt with its .safetensors)")
    start = saved[-1]
    state = torch.load(out / f"ckpt_{start:07d}.state.pt", map_location="cpu", weights_only=True)
    defaults = dataclasses.asdict(type(config)())
    for key in config.FIXED:
        before = state[config_key].get(key, defaults[key])
        if before != getattr(config, key):
            raise ValueError(f"{out}: --{key.replace('_', '-')} was {before!r} in the run being "
                             f"resumed, not {getattr(config, key)!r}")
    return start, state


def restore(run: Run) -> int:
    """Load the latest save of run.out into the run; returns its step (latest_state)."""
    from ..checkpoint import load_checkpoint

    out = run.out
    start, state = latest_state(out, "train_config", run.tc)
    saved_ema = load_checkpoint(out / f"ckpt_{start:07d}.safetensors")
    for role, m in run.models.items():
        m.load_state_dict(state["models"][role])
        run.ema[role].load_state_dict(getattr(saved_ema, role).state_dict())
    run.opt.load_state_dict(state["optimizer"])
    return start


def save(run: Run, step: int) -> None:
    """Both files of step `step`, then drop the saves older than the last --keep."""
    from ..checkpoint import save_checkpoint

    out, tc = run.out, run.tc
    meta = {"vidm_rt.step": str(step), "vidm_rt.train": json.dumps(dataclasses.asdict(tc))}
    cpu_ema = {role: copy.deepcopy(m).cpu() for role, m in run.ema.items()}
    roles = {**run.carried, **cpu_ema}
    state = {
        "step": step,
        "train_config": dataclasses.asdict(tc),
        "models": {role: {k: v.cpu() for k, v in m.state_dict().items()}
                   for role, m in run.models.items()},
        "optimizer": run.opt.state_dict(),
    }
    _torch_save(state, out / f"ckpt_{step:07d}.state.pt")
    save_checkpoint(out / f"ckpt_{step:07d}.safetensors", run.cfg, roles.get("content"),
                    roles.get("motion"), metadata=meta)
    for old in saved_steps(out)[:-tc.keep]:
        for suffix in (".state.pt", ".safetensors"):
            (out / f"ckpt_{old:07d}{suffix}").unlink(missing_ok=True)


def finish(run: Run) -> None:
    """model.safetensors: the last step's EMA checkpoint."""
    final = run.out / f"ckpt_{run.tc.steps:07d}.safetensors"
    if final.exists():
        (run.out / "model.safetensors").write_bytes(final.read_bytes())


def _torch_save(obj: Any, path: Path) -> None:
    import torch

    with atomic_write(path) as tmp:
        torch.save(obj, tmp)
