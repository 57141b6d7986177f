"""Training VIDM's content and motion models: `python -m vidm_rt.train` or `vidm-rt train`.

One process, or `torchrun --nproc_per_node N -m vidm_rt.train ...` for DistributedDataParallel
(NCCL on GPUs, gloo on CPUs); only rank 0 writes. Every random draw of step n on rank r (clips,
frame indices, timesteps, noise, dropout) comes from generators seeded with (seed, n, r), so the
RNG state is derivable and a resumed run reproduces an uninterrupted one exactly.

A run folder holds, for the last `--keep` saves:
    ckpt_<step>.safetensors   EMA weights: a vidm-rt checkpoint (sample / export use these)
    ckpt_<step>.state.pt      raw weights and optimizer state, for --resume
and at the end `model.safetensors` (the final EMA weights), plus `train.json` (the options),
`log.jsonl` (losses) and `preview_<step>.gif` when --preview-every is set.

torch is imported inside the functions, so importing this module (for the CLI) stays light.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from .atomic import atomic_write
from .errors import user_errors

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

    @property
    def roles(self) -> tuple[str, ...]:
        return ROLES if self.model == "both" else (self.model,)

    # Options that must not change when a run is resumed (steps and logging may).
    FIXED = ("preset", "model", "data", "batch", "lr", "weight_decay", "grad_clip", "ema", "seed",
             "cond_noise")


@dataclass
class TrainResult:
    step: int
    models: dict[str, Any]       # role -> raw model (on CPU)
    ema: dict[str, Any]          # role -> EMA model (on CPU)
    last_loss: float
    seconds: float


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def _saved_steps(out: Path) -> list[int]:
    steps = []
    for p in out.glob("ckpt_*.state.pt"):
        m = re.fullmatch(r"ckpt_(\d+)\.state\.pt", p.name)
        if m and (out / f"ckpt_{m[1]}.safetensors").exists():
            steps.append(int(m[1]))
    return sorted(steps)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class _Distributed:
    """Rank and world size from torchrun's environment; a no-op for a single process."""

    def __init__(self, device: str) -> None:
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")

    def wrap(self, model: Any, device: str) -> Any:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _draw_batch(role: str, ds: Any, rng: np.random.Generator, batch: int) -> dict[str, Any]:
    from .data import motion_batch, sample_indices

    if role == "content":
        ids = rng.integers(0, len(ds), batch)
        return {"frame": np.stack([ds.frames_at(int(i), [0])[0] for i in ids])}
    ids, ks = sample_indices(rng, len(ds), ds.frames, batch)
    return motion_batch(ds, ids, ks)


def _noisy_condition(prev: np.ndarray, level: float, gen: Any) -> np.ndarray:
    """Previous frames (B, C, H, W) with Gaussian noise of a standard deviation drawn per sample,
    uniform in [0, 2 * level]: sampling adds `level` to the model's own frames (config.py)."""
    import torch

    sigma = torch.rand(prev.shape[0], generator=gen) * (2 * level)
    noisy = torch.from_numpy(prev) + sigma[:, None, None, None] * torch.randn(prev.shape,
                                                                             generator=gen)
    return noisy.numpy()


def _write_preview(path: Path, ema: dict[str, Any], cfg: Any, ds: Any, seed: int) -> None:
    import torch

    from .reference import generate_video
    from .schedule import sampler_table
    from .video import write_video

    motion = ema.get("motion")
    if motion is None:
        return
    frames = min(cfg.train_frames, 8)
    first = None
    if ema.get("content") is None:
        first = torch.from_numpy(ds.frames_at(0, [0]))
    video = generate_video(motion, sampler_table("dpmpp2m", 10), frames,
                           content=ema.get("content"), first_frame=first, seed=seed, batch=2,
                           device=next(motion.parameters()).device)
    # The two videos side by side in one file: (F, 3, H, 2W).
    side_by_side = torch.cat(list(video.cpu()), dim=-1).numpy()
    try:
        write_video(path, side_by_side, fps=8)
    except ValueError:  # no Pillow: keep the preview as an array
        write_video(path.with_suffix(".npy"), side_by_side)


def train(tc: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) training; returns the final models (rank-local, on CPU)."""
    import torch
    from torch.nn.utils import clip_grad_norm_

    from .checkpoint import load_checkpoint, save_checkpoint
    from .config import preset
    from .data import DataError, open_dataset
    from .losses import DiffusionLoss
    from .models import ContentModel, MotionModel

    if tc.model not in ("content", "motion", "both"):
        raise ValueError(f"unknown --model {tc.model!r}: choose content, motion or both")
    if tc.steps < 1 or tc.batch < 1:
        raise ValueError("--steps and --batch must be at least 1")
    device = _device(tc.device)
    dist = _Distributed(device)
    if device.startswith("cuda") and dist.world > 1:
        device = f"cuda:{dist.local_rank}"
    is_main = dist.rank == 0
    out = Path(tc.out)

    cfg = preset(tc.preset)
    init = load_checkpoint(tc.init) if tc.init else None
    if init is not None:
        cfg = init.config
    if tc.cond_noise is not None:
        cfg = dataclasses.replace(cfg, cond_noise=tc.cond_noise)
    ds = open_dataset(tc.data, cfg.train_frames, cfg.image_size, seed=tc.seed)
    if len(ds) == 0:
        raise DataError(f"{tc.data}: the dataset is empty")

    torch.manual_seed(tc.seed)
    builders = {"content": ContentModel, "motion": MotionModel}
    models: dict[str, Any] = {}
    carried: dict[str, Any] = {}  # roles not trained here but kept in saved checkpoints
    for role in ROLES:
        start_from = getattr(init, role) if init is not None else None
        if role in tc.roles:
            models[role] = start_from if start_from is not None else builders[role](cfg)
        elif start_from is not None:
            carried[role] = start_from
    ema = {role: copy.deepcopy(m).requires_grad_(False) for role, m in models.items()}

    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    start = 0
    if resume:
        saved = _saved_steps(out)
        if not saved:
            raise ValueError(f"{out}: nothing to resume (no ckpt_*.state.pt with its .safetensors)")
        start = saved[-1]
        state = torch.load(out / f"ckpt_{start:07d}.state.pt", map_location="cpu",
                           weights_only=True)
        defaults = dataclasses.asdict(TrainConfig())
        for key in TrainConfig.FIXED:
            before = state["train_config"].get(key, defaults[key])  # older runs lack new keys
            if before != getattr(tc, key):
                raise ValueError(
                    f"{out}: --{key.replace('_', '-')} was {before!r} in the "
                    f"run being resumed, not {getattr(tc, key)!r}"
                )
        saved_ema = load_checkpoint(out / f"ckpt_{start:07d}.safetensors")
        for role, m in models.items():
            m.load_state_dict(state["models"][role])
            ema[role].load_state_dict(getattr(saved_ema, role).state_dict())
        opt.load_state_dict(state["optimizer"])

    for m in (*models.values(), *ema.values()):
        m.to(device)
    for m in ema.values():
        m.eval()
    for group in opt.state.values():  # optimizer state follows its parameters' device
        for k, v in group.items():
            if torch.is_tensor(v) and k != "step":
                group[k] = v.to(device)
    wrapped = {role: dist.wrap(m, device) for role, m in models.items()}
    loss_fn = DiffusionLoss(cfg.diffusion, device)
    autocast = device.startswith("cuda") and tc.amp and torch.cuda.is_bf16_supported()

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train.json").write_text(json.dumps(dataclasses.asdict(tc), indent=2))

    def save(step: int) -> None:
        meta = {"vidm_rt.step": str(step), "vidm_rt.train": json.dumps(dataclasses.asdict(tc))}
        cpu_ema = {role: copy.deepcopy(m).cpu() for role, m in ema.items()}
        roles = {**carried, **cpu_ema}
        state = {
            "step": step,
            "train_config": dataclasses.asdict(tc),
            "models": {role: {k: v.cpu() for k, v in m.state_dict().items()}
                       for role, m in models.items()},
            "optimizer": opt.state_dict(),
        }
        _atomic_torch_save(state, out / f"ckpt_{step:07d}.state.pt")
        save_checkpoint(out / f"ckpt_{step:07d}.safetensors", cfg, roles.get("content"),
                        roles.get("motion"), metadata=meta)
        for old in _saved_steps(out)[:-tc.keep]:
            for suffix in (".state.pt", ".safetensors"):
                (out / f"ckpt_{old:07d}{suffix}").unlink(missing_ok=True)

    bar = None
    if is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=tc.steps, initial=start, desc=f"train {tc.model} ({cfg.name})",
                   dynamic_ncols=True, file=sys.stderr)
    log = (out / "log.jsonl").open("a") if is_main else None
    running, last_loss, t0 = [], math.nan, time.time()
    for step in range(start, tc.steps):
        step_seed = _step_seed(tc.seed, step, dist.rank)
        torch.manual_seed(step_seed)  # dropout, if a preset enables it
        gen = torch.Generator().manual_seed(step_seed)
        rng = np.random.default_rng([tc.seed, step, dist.rank])
        total = torch.zeros((), device=device)
        terms_log: dict[str, float] = {}
        for role in tc.roles:
            b = _draw_batch(role, ds, rng, tc.batch)
            x0 = torch.from_numpy(b["frame"]).to(device)
            t = torch.randint(0, cfg.diffusion.num_timesteps, (tc.batch,), generator=gen)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            t = t.to(device)
            x_t = loss_fn.q_sample(x0, t, noise)
            if role == "motion" and cfg.cond_noise > 0:
                b["prev"] = _noisy_condition(b["prev"], cfg.cond_noise, gen)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                if role == "content":
                    out_t = wrapped[role](x_t, t.float())
                else:
                    out_t = wrapped[role](x_t, t.float(), torch.from_numpy(b["k"]).to(device),
                                          torch.from_numpy(b["prev"]).to(device),
                                          torch.from_numpy(b["first"]).to(device))
            terms = loss_fn(out_t, x0, x_t, t, noise)
            loss = terms["loss"].mean()
            total = total + loss
            terms_log.update({f"{role}_{k}": float(v.detach().mean()) for k, v in terms.items()})
        opt.zero_grad(set_to_none=True)
        total.backward()
        clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        with torch.no_grad():
            for role, m in models.items():
                for e, p in zip(ema[role].parameters(), m.parameters(), strict=True):
                    e.lerp_(p, 1.0 - tc.ema)
        last_loss = float(total.detach())
        running.append(last_loss)
        done = step + 1
        if is_main:
            if done % tc.log_every == 0 or done == tc.steps:
                entry = {"step": done, "loss": float(np.mean(running)), **terms_log,
                         "seconds": round(time.time() - t0, 2)}
                log.write(json.dumps(entry) + "\n")
                log.flush()
                running = []
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
            if done % tc.save_every == 0 or done == tc.steps:
                save(done)
            if tc.preview_every and done % tc.preview_every == 0:
                _write_preview(out / f"preview_{done:07d}.gif", ema, cfg, ds, tc.seed)
    if is_main:
        if bar is not None:
            bar.close()
        log.close()
        final = out / f"ckpt_{tc.steps:07d}.safetensors"
        if final.exists():
            (out / "model.safetensors").write_bytes(final.read_bytes())
    dist.close()
    return TrainResult(
        step=tc.steps,
        models={r: m.cpu() for r, m in models.items()},
        ema={r: m.cpu() for r, m in ema.items()},
        last_loss=last_loss,
        seconds=time.time() - t0,
    )


def _options(fn: Any) -> Any:
    defaults = TrainConfig()
    opts = [
        click.option("--preset", default=defaults.preset, show_default=True,
                     help="Model preset: tiny, small or clevrer128 (ignored with --init)."),
        click.option("--model", default=defaults.model, show_default=True,
                     type=click.Choice(["content", "motion", "both"]),
                     help="Which denoiser(s) to train; both share one optimizer."),
        click.option("--data", default=defaults.data, show_default=True,
                     help="'moving-shapes' (procedural) or a folder of frame folders / videos."),
        click.option("--out", default=defaults.out, show_default=True,
                     help="Run folder: checkpoints, log.jsonl, previews."),
        click.option("--steps", default=defaults.steps, show_default=True,
                     type=click.IntRange(1), help="Total optimizer steps (including resumed)."),
        click.option("--batch", default=defaults.batch, show_default=True,
                     type=click.IntRange(1), help="Samples per step and process, per model."),
        click.option("--lr", default=defaults.lr, show_default=True, type=float,
                     help="AdamW learning rate (the reference: 2e-5)."),
        click.option("--weight-decay", default=defaults.weight_decay, show_default=True,
                     type=float),
        click.option("--grad-clip", default=defaults.grad_clip, show_default=True, type=float),
        click.option("--ema", default=defaults.ema, show_default=True, type=float,
                     help="EMA decay per step (EMA weights are what export uses)."),
        click.option("--seed", default=defaults.seed, show_default=True, type=int),
        click.option("--save-every", default=defaults.save_every, show_default=True,
                     type=click.IntRange(1)),
        click.option("--keep", default=defaults.keep, show_default=True, type=click.IntRange(1),
                     help="How many saved checkpoints to keep."),
        click.option("--preview-every", default=defaults.preview_every, show_default=True,
                     type=click.IntRange(0), help="Write a preview GIF every N steps (0: never)."),
        click.option("--log-every", default=defaults.log_every, show_default=True,
                     type=click.IntRange(1)),
        click.option("--init", default=None, help="Start from this checkpoint's weights."),
        click.option("--device", default=defaults.device, show_default=True,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--amp/--no-amp", default=defaults.amp, show_default=True,
                     help="bf16 autocast on CUDA."),
        click.option("--cond-noise", type=click.FloatRange(0.0, 1.0, max_open=True),
                     help="Conditioning-noise augmentation against autoregressive drift: the "
                          "motion model trains on previous frames with Gaussian noise of a "
                          "standard deviation uniform in [0, 2 x this] (pixels in [-1, 1]), and "
                          "every video sampled from the checkpoint adds this much noise to each "
                          "previous frame (recorded in its config; export and every backend "
                          "apply it). Default: the --init checkpoint's, else 0 (off)."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out from its latest checkpoint."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@user_errors
def train_command(resume: bool, quiet: bool, **options: Any) -> None:
    """Train the content and/or motion model (P2-weighted hybrid loss, AdamW, EMA)."""
    result = train(TrainConfig(**options), resume=resume,
                   progress=not quiet and sys.stderr.isatty())
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"done: step {result.step}, loss {result.last_loss:.4f}, "
                   f"{result.seconds:.0f} s; weights in {options['out']}/model.safetensors")


if __name__ == "__main__":
    train_command()
