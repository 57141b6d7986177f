"""The shipped offline feature extractor for FVD: hand-designed video statistics, numpy only.

No network and no download: each video becomes D = 47 numbers, computed at a working size of
32 x 32 (larger or non-square videos are centre-cropped and resized, as the data sets are), from
its frames in [0, 1]:

- appearance, per frame and averaged over the video: colour means and contrasts, saturation, the
  colour of the bright pixels, high quantiles of brightness, how much of the frame is lit;
  gradient energy at three scales and Laplacian energy at two (sharpness, texture, noise), the
  mean log gradient magnitude (which the flat background dominates: a noise floor), chroma edges;
- change over time: mean squared frame differences at lags 1, 2, 4 and 8, the second difference
  (acceleration), how the lag-1 change varies along the video (a repeated or dropped frame, a
  cut), coarse-scale change, per-channel change, per-pixel temporal variance, distance from the
  first frame at three points;
- motion, Lucas-Kanade style at two scales: per 8 x 8 block and frame pair, the displacement
  that best explains the change from the spatial gradients; its mean speed, how it varies along
  the video, how much it changes between pairs (smooth motion or jitter), and the share of the
  change that no displacement explains (flicker, noise, teleporting content).

Energies enter as logarithms, so a factor counts the same at any scale. Each feature is then
standardised by the mean and standard deviation it has on real moving-shapes videos at 32 x 32,
16 frames (vidm_rt/assets/fvd-shapes-stats.safetensors, made by research/fvd_feature_stats.py),
so every feature's unit is its real spread and no one feature's scale decides the distance.
Nothing is trained: the statistics only set units. bench/fvd_sensitivity.py measures what the
FVD on these features responds to, including degradations that were not used to design it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

SIZE = 32
STATS_FILE = Path(__file__).parent.parent / "assets" / "fvd-shapes-stats.safetensors"
_EPS = 1e-5
_CHUNK = 64


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(x + _EPS)


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return x
    *lead, h, w = x.shape
    return x.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def _grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along x and y, cropped to a common (h - 1, w - 1) grid."""
    return x[..., :-1, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, :-1]


def _grad_energy(x: np.ndarray) -> np.ndarray:
    gx, gy = _grad(x)
    return (gx**2 + gy**2).mean(axis=(-2, -1))


def _laplacian_energy(x: np.ndarray) -> np.ndarray:
    lap = (4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1]
           - x[..., 1:-1, :-2] - x[..., 1:-1, 2:])
    return (lap**2).mean(axis=(-2, -1))


def _appearance(y: np.ndarray) -> list[np.ndarray]:
    """y (N, T, 3, S, S) in [0, 1] -> 22 appearance features (each (N,) or (N, k))."""
    lum, hi, lo = y.mean(axis=2), y.max(axis=2), y.min(axis=2)
    weight = hi**2
    bright = (y * weight[:, :, None]).sum(axis=(1, 3, 4)) / (weight.sum(axis=(1, 2, 3))[:, None]
                                                             + _EPS)
    flat = hi.reshape(*hi.shape[:2], -1)
    gx, gy = _grad(lum)
    return [
        y.mean(axis=(1, 3, 4)),
        y.std(axis=(3, 4)).mean(axis=1),
        (hi - lo).mean(axis=(1, 2, 3)),
        bright,
        np.quantile(flat, [0.85, 0.9, 0.95], axis=-1).mean(axis=-1).T,
        (hi > 0.25).mean(axis=(1, 2, 3)),
        (hi > 0.6).mean(axis=(1, 2, 3)),
        np.stack([_log(_grad_energy(_pool(lum, k))).mean(axis=1) for k in (1, 2, 4)], axis=1),
        np.stack([_log(_laplacian_energy(_pool(lum, k))).mean(axis=1) for k in (1, 2)], axis=1),
        np.log(np.sqrt(gx**2 + gy**2) + 1e-3).mean(axis=(1, 2, 3)),
        _log(_grad_energy(y - lum[:, :, None]).mean(axis=(1, 2))),
    ]


def _change(y: np.ndarray) -> list[np.ndarray]:
    """17 features of how the frames change over time."""
    t = y.shape[1]

    def lag(x: np.ndarray, k: int, axes: tuple[int, ...]) -> np.ndarray:
        k = min(k, t - 1)
        return ((x[:, k:] - x[:, :-k]) ** 2).mean(axis=axes)

    per_pair = _log(lag(y, 1, (2, 3, 4)))  # (N, T - 1)
    coarse = _pool(y, 4)
    accel = y[:, 2:] - 2 * y[:, 1:-1] + y[:, :-2]
    from_first = ((y - y[:, :1]) ** 2).mean(axis=(2, 3, 4))
    return [
        np.stack([_log(lag(y, k, (1, 2, 3, 4))) for k in (1, 2, 4, 8)], axis=1),
        _log((accel**2).mean(axis=(1, 2, 3, 4))),
        per_pair.std(axis=1),
        per_pair.min(axis=1),
        per_pair.max(axis=1),
        np.stack([_log(lag(coarse, k, (1, 2, 3, 4))) for k in (1, 4)], axis=1),
        _log(lag(y, 1, (1, 3, 4))),
        _log(y.var(axis=1).mean(axis=(1, 2, 3))),
        _log(from_first[:, [1, t // 2, t - 1]]),
    ]


def _motion(lum: np.ndarray, block: int = 8) -> list[np.ndarray]:
    """4 Lucas-Kanade features of (N, T, H, W) luminance, blocks of `block` pixels."""
    mid = (lum[:, 1:] + lum[:, :-1]) / 2
    it = lum[:, 1:] - lum[:, :-1]
    ix = np.gradient(mid, axis=-1)
    iy = np.gradient(mid, axis=-2)

    def blocks(a: np.ndarray) -> np.ndarray:  # block sums (N, T - 1, B)
        return _pool(a, block).reshape(*a.shape[:2], -1) * block * block

    sxx, syy, sxy = blocks(ix * ix), blocks(iy * iy), blocks(ix * iy)
    sxt, syt, stt = blocks(ix * it), blocks(iy * it), blocks(it * it)
    reg = 1e-3 * block * block  # keeps flat blocks (no gradient) at zero displacement
    a, c = sxx + reg, syy + reg
    det = a * c - sxy**2
    vx = -(c * sxt - sxy * syt) / det
    vy = -(a * syt - sxy * sxt) / det
    # Energy of Ix vx + Iy vy + It over the block, expanded in the block sums.
    residual = (vx**2 * sxx + 2 * vx * vy * sxy + vy**2 * syy + 2 * (vx * sxt + vy * syt) + stt)
    speed = np.sqrt(vx**2 + vy**2)
    weight = stt + _EPS
    pair_speed = (speed * weight).sum(axis=2) / weight.sum(axis=2)  # (N, T - 1)
    jump = np.sqrt(np.diff(vx, axis=1) ** 2 + np.diff(vy, axis=1) ** 2)
    jump_w = np.minimum(weight[:, 1:], weight[:, :-1])
    return [
        (speed * weight).sum(axis=(1, 2)) / weight.sum(axis=(1, 2)),
        pair_speed.std(axis=1),
        _log((jump * jump_w).sum(axis=(1, 2)) / (jump_w.sum(axis=(1, 2)))),
        np.clip(residual, 0, None).sum(axis=(1, 2)) / weight.sum(axis=(1, 2)),
    ]


def raw_features(y: np.ndarray) -> np.ndarray:
    """(N, T, 3, 32, 32) float in [0, 1], T >= 3 -> (N, 47) features before standardising."""
    lum = y.mean(axis=2)
    parts = _appearance(y) + _change(y) + _motion(lum) + _motion(_pool(lum, 2))
    return np.concatenate([p.reshape(len(y), -1) for p in parts], axis=1).astype(np.float64)


def to_working_size(videos: np.ndarray) -> np.ndarray:
    """(N, T, H, W, 3) uint8 -> (N, T, 3, 32, 32) float32 in [0, 1]."""
    from ..data import center_crop_resize

    if videos.shape[2:4] == (SIZE, SIZE):
        return np.moveaxis(videos, -1, 2).astype(np.float32) / 255.0
    return np.stack([(center_crop_resize(v, SIZE) + 1.0) / 2.0 for v in videos])


def load_stats(path: Path = STATS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """The shipped standardisation: (mean, std) of the raw features on real videos."""
    from safetensors.numpy import load_file

    if not path.is_file():
        raise ValueError(f"{path}: the shipped feature statistics are missing from this "
                         "installation: reinstall vidm-rt, or use --extractor i3d")
    tensors = load_file(str(path))
    return tensors["mean"].astype(np.float64), tensors["std"].astype(np.float64)


class ShippedFeatures:
    """The offline extractor: `features(videos)` -> (N, 47) standardised features."""

    name = "shipped"

    def __init__(self, stats: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.mean, self.std = stats if stats is not None else load_stats()

    def describe(self) -> dict[str, object]:
        return {"extractor": self.name, "dims": int(len(self.mean)), "size": SIZE,
                "stats": STATS_FILE.name}

    def features(self, videos: np.ndarray,
                 on_videos: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, T, H, W, 3) uint8 videos, T >= 3 -> (N, 47)."""
        if videos.shape[1] < 3:
            raise ValueError(f"the shipped extractor needs videos of at least 3 frames, got "
                             f"{videos.shape[1]}")
        out = []
        for i in range(0, len(videos), _CHUNK):
            chunk = videos[i:i + _CHUNK]
            out.append((raw_features(to_working_size(chunk)) - self.mean) / self.std)
            if on_videos is not None:
                on_videos(len(chunk))
        return np.concatenate(out)
