"""Known ways to spoil a set of videos, to check what an FVD feature extractor responds to.

Each takes (N, T, 3, H, W) float videos in [-1, 1], a strength and a numpy Generator, and returns
spoiled videos of the same shape (values may leave [-1, 1]; writing them clips, as a file would).
Strength 0 leaves the videos as they are. bench/fvd_sensitivity.py tabulates the FVD each gives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Degradation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def noise(v: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian pixel noise; sigma in units of the full range [0, 1]."""
    return v + rng.normal(0.0, 2 * sigma, v.shape).astype(v.dtype)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


def blur(v: np.ndarray, sigma: float, rng: np.random.Generator | None,
         mode: str = "reflect") -> np.ndarray:
    """Gaussian blur of every frame, sigma in pixels (edges padded by np.pad's `mode`)."""
    if sigma <= 0:
        return v
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    out = v
    for axis in (-1, -2):
        pad = [(0, 0)] * v.ndim
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode=mode)
        n = out.shape[axis]
        out = sum(k[i] * np.take(padded, range(i, i + n), axis=axis) for i in range(len(k)))
    return out.astype(v.dtype)


def shuffle(v: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Per video, a random `fraction` of the frames change places among themselves."""
    out = v.copy()
    t = v.shape[1]
    for n in range(len(v)):
        picked = rng.choice(t, round(fraction * t), replace=False)
        out[n, picked] = v[n, rng.permutation(picked)]
    return out


def freeze(v: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The last `fraction` of the video stops: fraction 1 makes every frame frame 0."""
    start = round((1 - fraction) * (v.shape[1] - 1))
    out = v.copy()
    out[:, start:] = v[:, start:start + 1]
    return out


def colour_shift(v: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Each channel mixed with the next one by `amount` (a hue rotation, brightness kept)."""
    return (1 - amount) * v + amount * np.roll(v, 1, axis=2)


def contrast(v: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    """Values pulled towards mid-grey by `loss` (0: unchanged, 1: flat grey)."""
    return v * (1 - loss)


def jitter(v: np.ndarray, pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Every frame shifted by its own random offset of up to `pixels` in x and y (camera
    shake); uncovered borders are black."""
    p = int(round(pixels))
    if p == 0:
        return v
    out = np.full_like(v, -1.0)
    h, w = v.shape[-2:]
    for n in range(v.shape[0]):
        for t in range(v.shape[1]):
            dy, dx = rng.integers(-p, p + 1, 2)
            out[n, t, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                v[n, t, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def reverse(v: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Played backwards (strength > 0)."""
    return v[:, ::-1].copy() if strength > 0 else v


def drop_frames(v: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each frame after the first is lost with probability p and the previous one shown again
    (a stutter)."""
    out = v.copy()
    for n in range(len(v)):
        for t in np.nonzero(rng.random(v.shape[1]) < p)[0]:
            if t > 0:
                out[n, t] = out[n, t - 1]
    return out


def posterize(v: np.ndarray, levels: float, rng: np.random.Generator) -> np.ndarray:
    """Every value rounded to one of `levels` evenly spaced levels (banding)."""
    q = (levels - 1) / 2
    return np.round((v + 1) * q) / q - 1


# The four the extractor was designed against, and those held out while designing it.
DESIGNED: dict[str, Degradation] = {"noise": noise, "blur": blur, "shuffle": shuffle,
                                    "freeze": freeze}
HELD_OUT: dict[str, Degradation] = {"colour_shift": colour_shift, "contrast": contrast,
                                    "jitter": jitter, "reverse": reverse,
                                    "drop_frames": drop_frames, "posterize": posterize}
