"""Fréchet video distance: feature statistics and the Fréchet distance between two Gaussians.

FVD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with each set's features summarised by their
mean and `np.cov(rowvar=False)` covariance, as StyleGAN-V's evaluation (and so the VIDM authors')
computes it. Two ways to the matrix square root:

- `scipy`: `scipy.linalg.sqrtm(S1 @ S2)` and the real part of the result, the authors' way
  (scipy is the `eval` extra). `sqrtm(..., disp=False)` there only changes the return type (a
  tuple with an error estimate), so the plain call returns the same matrix.
- `eigh`: numpy only. Tr (S1 S2)^(1/2) = Tr (R S2 R)^(1/2) with R = S1^(1/2), and R S2 R is
  symmetric positive semi-definite, so both roots come from symmetric eigendecompositions, which
  stays exact where sqrtm of the non-symmetric product loses digits (near-singular covariances).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

METHODS = ("scipy", "eigh")


class Extractor(Protocol):
    """Videos -> features: the shipped extractor (features.py) or I3D (i3d.py)."""

    def features(self, videos: np.ndarray,
                 on_videos: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, T, H, W, 3) uint8 -> (N, D); `on_videos(n)` after each n videos."""
        ...

    def describe(self) -> dict[str, object]:
        """What the report records about the extractor."""
        ...


@dataclass(frozen=True)
class FeatureStats:
    """A set's features summarised: mean (D,), covariance (D, D), and how many videos."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        """(N, D) features -> their statistics. A covariance of D features from N videos has
        rank at most N - 1, so fewer than D + 1 videos is refused: the distance would measure
        the sample size, not the videos."""
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"features must be (videos, dims), got shape {feats.shape}")
        n, d = feats.shape
        if n < d + 1:
            raise ValueError(f"{n} videos give a rank-deficient covariance of {d} features: "
                             f"give at least {d + 1} videos")
        return cls(feats.mean(axis=0), np.cov(feats, rowvar=False), n)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray, method: str = "scipy") -> float:
    """Tr (s1 s2)^(1/2) for covariance matrices s1, s2 (see the module docstring)."""
    if method == "scipy":
        from scipy import linalg

        with warnings.catch_warnings():
            # The authors' disp=False: no warning printed for an ill-conditioned product.
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            return float(np.real(np.trace(linalg.sqrtm(s1 @ s2))))
    if method == "eigh":
        root = _sqrt_psd(s1)
        w = np.linalg.eigvalsh(root @ s2 @ root)
        return float(np.sqrt(np.clip(w, 0.0, None)).sum())
    raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def frechet_distance(a: FeatureStats, b: FeatureStats, method: str = "scipy") -> float:
    """The Fréchet distance between the Gaussians with `a`'s and `b`'s mean and covariance."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature sizes differ: {a.mu.shape[0]} and {b.mu.shape[0]}")
    mean_term = float(np.sum((a.mu - b.mu) ** 2))
    return mean_term + float(np.trace(a.sigma) + np.trace(b.sigma)) \
        - 2.0 * trace_sqrt_product(a.sigma, b.sigma, method)


def default_method() -> str:
    """scipy's sqrtm where scipy is installed (the authors' computation), else eigh."""
    try:
        import scipy.linalg  # noqa: F401
    except ImportError:
        return "eigh"
    return "scipy"


@dataclass(frozen=True)
class Spread:
    """FVD over several sample sets: the values, their mean and sample standard deviation."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"mean": self.mean, "std": self.std, "min": float(min(self.values)),
                "max": float(max(self.values)), "values": list(self.values)}


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no FVD values to summarise")
    return Spread(tuple(float(v) for v in values))
