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

    from ..eval.degrade import blur

    sigmas = (torch.rand(prev.shape[0], generator=gen) * max_sigma).tolist()
    return np.stack([blur(p, s, None, mode="edge") for p, s in zip(prev, sigmas, strict=True)])
