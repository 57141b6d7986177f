"""The data of one step: a batch per role and the step's random generators.

Every random draw of step n on rank r (clips, frame indices, timesteps, noise, dropout) comes
from generators seeded with (seed, n, r), so the RNG state is derivable and a resumed run
reproduces an uninterrupted one exactly."""

from __future__ import annotations

from typing import Any

import numpy as np


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


def draw_batch(role: str, ds: Any, rng: np.random.Generator, batch: int) -> dict[str, Any]:
    """content: {"frame"}; motion: {"frame", "k", "prev", "first"} (vidm_rt.data)."""
    from ..data import motion_batch, sample_indices

    if role == "content":
        ids = rng.integers(0, len(ds), batch)
        return {"frame": np.stack([ds.frames_at(int(i), [0])[0] for i in ids])}
    ids, ks = sample_indices(rng, len(ds), ds.frames, batch)
    return motion_batch(ds, ids, ks)


def noisy_condition(prev: np.ndarray, level: float, gen: Any) -> np.ndarray:
    """Previous frames (B, C, H, W) with Gaussian noise of a standard deviation drawn per sample,
    uniform in [0, 2 * level]: sampling adds `level` to the model's own frames (config.py)."""
    import torch

    sigma = torch.rand(prev.shape[0], generator=gen) * (2 * level)
    noisy = torch.from_numpy(prev) + sigma[:, None, None, None] * torch.randn(prev.shape,
                                                                             generator=gen)
    return noisy.numpy()


def blurred_condition(prev: np.ndarray, max_sigma: float, gen: Any) -> np.ndarray:
    """Previous frames (B, C, H, W), each blurred by a Gaussian of a standard deviation drawn
    uniform in [0, max_sigma] pixels (edges replicated, so a frame's mean barely moves)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(prev)
    sigmas = torch.rand(x.shape[0], generator=gen) * max_sigma
    radius = max(1, int(np.ceil(3 * max_sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernels = torch.exp(-0.5 * (taps[None] / sigmas.clamp_min(1e-3)[:, None]) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)  # (B, taps)
    b, c, h, w = x.shape
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    # One depthwise pass per axis; each sample's kernel repeated over its channels.
    rows = kernels.repeat_interleave(c, dim=0)[:, None, None, :]
    cols = rows.transpose(2, 3)
    flat = padded.reshape(1, b * c, h + 2 * radius, w + 2 * radius)
    out = F.conv2d(F.conv2d(flat, rows, groups=b * c), cols, groups=b * c)
    return out.reshape(b, c, h, w).numpy()

