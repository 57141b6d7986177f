"""The diffusion process as guided_diffusion defines it (numpy only, float64): the linear beta
schedule, respacing to fewer timesteps, and the posterior terms the samplers are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NUM_TRAIN_TIMESTEPS = 1000


def linear_betas(num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> np.ndarray:
    """guided_diffusion's "linear" beta schedule, scaled so any T matches the T=1000 process."""
    if int(num_timesteps) != num_timesteps or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}")
    num_timesteps = int(num_timesteps)
    scale = 1000 / num_timesteps
    return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps, dtype=np.float64)


def _parse_section_counts(spacing: int | str | Sequence[int]) -> list[int]:
    if isinstance(spacing, bool):
        raise ValueError(f"bad spacing {spacing!r}")
    if isinstance(spacing, (int, np.integer)):
        return [int(spacing)]
    if isinstance(spacing, str):
        try:
            return [int(part) for part in spacing.split(",")]
        except ValueError:
            raise ValueError(
                f"bad spacing {spacing!r}: expected 'N', 'N1,N2,...' or 'ddimN'"
            ) from None
    try:
        return [int(part) for part in spacing]
    except (TypeError, ValueError):
        raise ValueError(f"bad spacing {spacing!r}") from None


def space_timesteps(num_timesteps: int, spacing: int | str | Sequence[int]) -> np.ndarray:
    """Original timesteps kept by a respaced process (guided_diffusion ``space_timesteps``).

    ``"N"`` / ``N`` / ``"N1,N2,..."``: the original process is cut into equal sections (the first
    ``T % len`` sections one step longer) and each section is strided to its count with
    fractional stride ``(size-1)/(count-1)`` and Python ``round``.  ``"ddimN"``: the smallest
    integer stride with ``len(range(0, T, stride)) == N``; ``ValueError`` if there is none.
    ``"linspaceN"``: the N largest of ``round(linspace(0, T-1, N+1))`` (diffusers' spacing),
    which leaves out t=0; the default for dpmpp2m.
    Returns the sorted unique timesteps as int64.
    """
    if int(num_timesteps) != num_timesteps or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}")
    num_timesteps = int(num_timesteps)
    if isinstance(spacing, str) and spacing.startswith("linspace"):
        try:
            desired = int(spacing[len("linspace") :])
        except ValueError:
            raise ValueError(f"bad spacing {spacing!r}: expected 'linspaceN'") from None
        if not 1 <= desired <= num_timesteps - 1:
            raise ValueError(f"bad spacing {spacing!r}: N must be in [1, {num_timesteps - 1}]")
        # diffusers' "linspace" spacing: the N largest of N+1 evenly spaced points, so the
        # network is never evaluated at t=0 and the last model step lands on a moderate SNR.
        points = np.round(np.linspace(0, num_timesteps - 1, desired + 1))[1:]
        return np.unique(points.astype(np.int64))
    if isinstance(spacing, str) and spacing.startswith("ddim"):
        try:
            desired = int(spacing[len("ddim") :])
        except ValueError:
            raise ValueError(f"bad spacing {spacing!r}: expected 'ddimN'") from None
        # Same search range as guided_diffusion (stride < T), so e.g. "ddim1" is rejected there
        # and here alike.
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == desired:
                return np.arange(0, num_timesteps, stride, dtype=np.int64)
        raise ValueError(
            f"cannot create exactly {desired} steps from {num_timesteps} with an integer stride "
            f"(spacing {spacing!r})"
        )

    counts = _parse_section_counts(spacing)
    if not counts or any(c < 0 for c in counts):
        raise ValueError(f"bad spacing {spacing!r}: section counts must be >= 0")
    size_per, extra = divmod(num_timesteps, len(counts))
    start = 0
    steps: list[int] = []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(
                f"cannot divide a section of {size} steps into {count} (spacing "
                f"{spacing!r}, {num_timesteps} timesteps)"
            )
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        # Accumulate the index like guided_diffusion does (not i*stride) so that float rounding
        # at .5 ties picks exactly the same timesteps as the reference implementation.
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    if not steps:
        raise ValueError(f"bad spacing {spacing!r}: selects no timesteps")
    return np.unique(np.asarray(steps, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------


def readonly(a: Any, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Schedule:
    """A (possibly respaced) diffusion process, as guided_diffusion's GaussianDiffusion sees it.

    Index ``i`` refers to the i-th kept timestep in ascending order; ``timesteps[i]`` is its
    original timestep.
    """

    timesteps: np.ndarray
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    posterior_variance: np.ndarray
    posterior_log_variance_clipped: np.ndarray
    posterior_mean_coef1: np.ndarray
    posterior_mean_coef2: np.ndarray

    def __len__(self) -> int:
        return int(self.timesteps.shape[0])


def make_schedule(
    spacing: int | str | Sequence[int] | None = None,
    num_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> Schedule:
    """Build the respaced process for ``spacing`` (``None``: all ``num_timesteps`` steps)."""
    base_betas = linear_betas(num_timesteps)
    base_acp = np.cumprod(1.0 - base_betas)
    if spacing is None:
        kept = np.arange(num_timesteps, dtype=np.int64)
    else:
        kept = space_timesteps(num_timesteps, spacing)

    # guided_diffusion SpacedDiffusion: betas from acp ratios of the kept timesteps, then the
    # whole process is recomputed from those betas (cumprod), which we mirror bit for bit.
    betas = np.empty(len(kept), dtype=np.float64)
    last = 1.0
    for i, t in enumerate(kept):
        betas[i] = 1.0 - base_acp[t] / last
        last = base_acp[t]
    if not (np.all(betas > 0) and np.all(betas <= 1)):
        raise ValueError("respaced betas must lie in (0, 1]")

    alphas = 1.0 - betas
    acp = np.cumprod(alphas)
    acp_prev = np.append(1.0, acp[:-1])
    post_var = betas * (1.0 - acp_prev) / (1.0 - acp)
    # Entry 0 of the posterior variance is 0 (log -inf); guided_diffusion substitutes entry 1.
    # With a single kept timestep there is no entry 1: fall back to beta_0 (only the final,
    # noise-free step uses index 0, so this value never reaches a sample).
    first = post_var[1] if len(post_var) > 1 else betas[0]
    post_log_var = np.log(np.append(first, post_var[1:]))
    coef1 = betas * np.sqrt(acp_prev) / (1.0 - acp)
    coef2 = (1.0 - acp_prev) * np.sqrt(alphas) / (1.0 - acp)
    return Schedule(
        timesteps=readonly(kept, np.int64),
        betas=readonly(betas),
        alphas_cumprod=readonly(acp),
        alphas_cumprod_prev=readonly(acp_prev),
        posterior_variance=readonly(post_var),
        posterior_log_variance_clipped=readonly(post_log_var),
        posterior_mean_coef1=readonly(coef1),
        posterior_mean_coef2=readonly(coef2),
    )


def learned_range_log_variance(schedule: Schedule, index: Any, v: Any) -> Any:
    """guided_diffusion "learned range" log variance at respaced ``index`` for model output v.

    ``v = 1`` gives ``log(beta)``, ``v = -1`` the clipped posterior log variance.  Works for
    numpy arrays, Python floats and (with an integer index) torch tensors.
    """
    max_log = np.log(schedule.betas[index])
    min_log = schedule.posterior_log_variance_clipped[index]
    if np.ndim(max_log) == 0:
        # Plain floats keep torch tensors as torch tensors (and their dtype) under arithmetic.
        max_log, min_log = float(max_log), float(min_log)
    frac = (v + 1) / 2
    return frac * max_log + (1 - frac) * min_log
