"""The PyTorch reference video sampler: what every backend is checked against.

A video is frame 0 from the content model (or a given first frame), then frames 1.. from the
motion model, each conditioned on frame 0 and the frame before it. Every frame is denoised from
x_T by the same per-step update (`vidm_rt.schedule.apply_update`) with the counter-based noise of
`vidm_rt.noise`, addressed by (seed, video, frame, step): step 0 is x_T, step i+1 the noise of
sampler step i. So any backend given the same seed and table must produce the same frames.

A model trained with conditioning noise (`VIDMConfig.cond_noise`) sees each previous frame with
that much noise added, drawn at step `noise.CONDITION_STEP` of the frame being made.

The motion model's flow does not depend on t: it is computed once per frame. `recompute_flow=True`
runs the reference implementation's own loop instead (flow at every step), the baseline that the
benchmarks compare against; it gives the same frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from . import noise
from .models import ContentModel, MotionModel, split_output
from .schedule import SamplerTable, apply_update, frame_index


def denoise_frame(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    table: SamplerTable,
    noise_fn: Callable[[int], torch.Tensor],
) -> torch.Tensor:
    """Run every step of `table` from x_T = noise_fn(0); model_fn(x_t, t) -> (B, 6, H, W)."""
    x = noise_fn(0)
    x0_prev = torch.zeros_like(x)
    for i, t in enumerate(table.model_t):
        t_batch = torch.full((x.shape[0],), float(t), dtype=torch.float32, device=x.device)
        eps, v = split_output(model_fn(x, t_batch))
        # A step that injects no noise needs none generated (its coefficient multiplies it by 0).
        z = noise_fn(i + 1) if table.noise_std[i] != 0 else torch.zeros_like(x)
        x, x0_prev = apply_update(table, i, x, eps, v, z, x0_prev, exp=torch.exp)
    return x


@torch.no_grad()
def sample_video(
    motion: MotionModel,
    table: SamplerTable,
    frames: int,
    *,
    content: ContentModel | None = None,
    first_frame: torch.Tensor | None = None,
    seed: int = 0,
    batch: int = 1,
    first_video: int = 0,
    recompute_flow: bool = False,
    frame_index_policy: str = "clamp",
    cond_noise: float = 0.0,
    device: str | torch.device = "cpu",
) -> Iterator[torch.Tensor]:
    """Yield frames (B, 3, H, W) in [-1, 1] one by one, frame 0 first.

    Frame 0 is `first_frame` (B or 1, 3, H, W) when given, else the content model's sample.
    Videos are numbered first_video .. first_video + batch - 1 for the noise addressing.
    Frame f >= 1 uses the frame index `frame_index(f, F, frame_index_policy)` and sees the
    frame before it with `cond_noise` (the checkpoint config's) added.
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    videos = np.arange(first_video, first_video + batch)

    def noise_for(frame: int, shape: tuple[int, ...]) -> Callable[[int], torch.Tensor]:
        def fn(step: int) -> torch.Tensor:
            z = noise.gaussian_batch(seed, videos, frame, step, shape)
            return torch.from_numpy(z).to(device)
        return fn

    if first_frame is not None:
        x_first = first_frame.to(device=device, dtype=torch.float32)
        if x_first.shape[0] == 1 and batch > 1:
            x_first = x_first.expand(batch, -1, -1, -1)
        if x_first.shape[0] != batch:
            raise ValueError(f"first frame batch {x_first.shape[0]} does not match batch {batch}")
    elif content is not None:
        c, s = content.constant.shape[1], content.constant.shape[-1]
        x_first = denoise_frame(content, table, noise_for(0, (c, s, s)))
    else:
        raise ValueError("no content model in the checkpoint: give a first frame")
    yield x_first

    shape = tuple(x_first.shape[1:])
    x_prev = x_first
    for f in range(1, frames):
        k_f = frame_index(f, motion.train_frames, frame_index_policy)
        k = torch.full((batch,), float(k_f), dtype=torch.float32, device=device)
        condition = x_prev
        if cond_noise:
            condition = x_prev + np.float32(cond_noise) * noise_for(f, shape)(noise.CONDITION_STEP)
        model_fn = _motion_fn(motion, k, condition, x_first, recompute_flow)
        x_prev = denoise_frame(model_fn, table, noise_for(f, shape))
        yield x_prev


def _motion_fn(
    motion: MotionModel,
    k: torch.Tensor,
    x_prev: torch.Tensor,
    x_first: torch.Tensor,
    recompute_flow: bool,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The motion denoiser of one frame as model_fn(x_t, t)."""
    if recompute_flow:
        return lambda x, t: motion(x, t, k, x_prev, x_first)
    flow = motion.compute_flow(x_first, x_prev)
    return lambda x, t: motion.denoise(x, t, k, flow, x_first)


def generate_video(motion: MotionModel, table: SamplerTable, frames: int, **kwargs) -> torch.Tensor:
    """All frames of `sample_video` stacked: (B, F, 3, H, W) in [-1, 1]."""
    return torch.stack(list(sample_video(motion, table, frames, **kwargs)), dim=1)
