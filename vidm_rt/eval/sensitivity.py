"""What an FVD feature extractor responds to, on moving-shapes videos.

One real set A is spoiled by each degradation (vidm_rt.eval.degrade) at rising strengths and
scored against a second, independent real set B; independent pairs of real sets give the spread
that FVD shows when nothing is wrong. Data shifts replace A by moving shapes drawn another way
(faster, bigger, more of them). A row separates where every level scores above the largest
real-vs-real FVD, and is monotonic where each level scores above the one before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..data import MovingShapesSpec
from ..video import to_uint8
from . import degrade
from .fvd import Extractor, FeatureStats, default_method, frechet_distance, spread
from .videos import shapes_clips

LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.005, 0.01, 0.02, 0.05, 0.1), "blur": (0.5, 1.0, 1.5, 2.0),
    "shuffle": (0.25, 0.5, 1.0), "freeze": (0.25, 0.5, 1.0),
    "colour_shift": (0.05, 0.1, 0.2, 0.4), "contrast": (0.05, 0.1, 0.2, 0.4),
    "jitter": (1.0, 2.0), "reverse": (1.0,), "drop_frames": (0.1, 0.25, 0.5),
    "posterize": (16.0, 8.0, 4.0),
}
# Held-out shifts of the data itself: MovingShapesSpec fields scaled per level.
SHIFTS: dict[str, tuple[dict[str, float], ...]] = {
    "faster": ({"min_speed": 1.5, "max_speed": 1.5}, {"min_speed": 2.0, "max_speed": 2.0}),
    "bigger": ({"min_radius": 1.25, "max_radius": 1.25}, {"min_radius": 1.5, "max_radius": 1.5}),
    "more_shapes": ({"max_shapes": 1.5}, {"min_shapes": 3.0, "max_shapes": 1.5}),
}
SEED = 1000  # real sets: A = SEED, B = SEED + 1, real-vs-real pairs from SEED + 1000 on


def _shifted(spec: MovingShapesSpec, factors: dict[str, float]) -> MovingShapesSpec:
    return replace(spec, **{k: type(getattr(spec, k))(getattr(spec, k) * f)
                            for k, f in factors.items()})


def sensitivity(extractor: Extractor, videos: int = 512, pairs: int = 5,
                levels: dict[str, tuple[float, ...]] | None = None,
                shifts: dict[str, tuple[dict[str, float], ...]] | None = None,
                size: int = 32, frames: int = 16, method: str | None = None,
                on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The sensitivity table (module docstring) as a dict ready for JSON."""
    method = method or default_method()
    spec = MovingShapesSpec(size=size, frames=frames)
    levels = LEVELS if levels is None else levels
    shifts = SHIFTS if shifts is None else shifts

    def stats(clips: np.ndarray) -> FeatureStats:
        return FeatureStats.of(extractor.features(to_uint8(clips)))

    real = spread([frechet_distance(stats(shapes_clips(videos, spec, SEED + 1000 + 2 * i)),
                                    stats(shapes_clips(videos, spec, SEED + 1001 + 2 * i)),
                                    method) for i in range(pairs)])
    a, b = shapes_clips(videos, spec, SEED), stats(shapes_clips(videos, spec, SEED + 1))
    base = frechet_distance(stats(a), b, method)
    rows = []

    def add(name: str, kind: str, shown: list[Any], fvd: list[float]) -> None:
        row = {"name": name, "kind": kind, "levels": shown, "fvd": fvd,
               "separated": [v > real.to_dict()["max"] for v in fvd],
               "monotonic": bool(all(y > x for x, y in zip([base, *fvd], fvd, strict=False)))}
        rows.append(row)
        if on_row is not None:
            on_row(row)

    for name, strengths in levels.items():
        fn = {**degrade.DESIGNED, **degrade.HELD_OUT}[name]
        kind = "designed" if name in degrade.DESIGNED else "held_out"
        add(name, kind, list(strengths),
            [frechet_distance(stats(fn(a, s, np.random.default_rng([SEED, i]))), b, method)
             for i, s in enumerate(strengths)])
    for name, variants in shifts.items():
        add(name, "data_shift", variants,
            [frechet_distance(stats(shapes_clips(videos, _shifted(spec, f), SEED)), b, method)
             for f in variants])
    return {"videos": videos, "frames": frames, "size": size, "method": method,
            "real_vs_real": real.to_dict(), "a_vs_b": base, "rows": rows}


def object_sensitivity(extractor: Extractor, videos: int = 128, real: int = 2048,
                       share: float = 0.25, pairs: int = 5, size: int = 32, frames: int = 16,
                       method: str | None = None,
                       on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """FVD of `videos` real clips with `share` of them damaged (vidm_rt.eval.object_damage),
    against `real` real clips, beside real-vs-real (sets of `videos` clean clips, `pairs`
    seeds); one row per designed and held-out damage, its ratio to the real-vs-real mean."""
    from .object_damage import DESIGNED, HELD_OUT, damaged_set

    method = method or default_method()
    spec = MovingShapesSpec(size=size, frames=frames)

    def stats(clips: np.ndarray) -> FeatureStats:
        return FeatureStats.of(extractor.features(to_uint8(clips)))

    reference = stats(shapes_clips(real, spec, SEED + 5000))
    real_fvd = spread([frechet_distance(stats(shapes_clips(videos, spec, SEED + 6000 + i)),
                                        reference, method) for i in range(pairs)])
    rows = []
    for name in (*DESIGNED, *HELD_OUT):
        fvd = frechet_distance(stats(damaged_set(name, videos, spec, SEED + 7000, share)),
                               reference, method)
        row = {"name": name, "kind": "designed" if name in DESIGNED else "held_out",
               "fvd": fvd, "ratio": fvd / real_fvd.to_dict()["mean"]}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return {"videos": videos, "real": real, "share": share, "frames": frames, "size": size,
            "method": method, "real_vs_real": real_fvd.to_dict(), "rows": rows}
