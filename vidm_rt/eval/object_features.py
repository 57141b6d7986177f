"""The object-aware offline FVD extractor: the shipped statistics plus the object physics.

The shipped extractor (features.py) measures appearance, change over time and block motion; it
barely moves when a shape pops in, vanishes or changes kind or colour, because those change a
few dozen pixels of one frame in four videos out of sixteen. This extractor appends to its 47
numbers 14 per video from the tracker (vidm_rt.eval.tracker), which sees exactly those failures:

    shapes on the first and last frame, the most and fewest on any frame,
    one indicator per event (appear, vanish, kind, colour, size, jump),
    the worst miss of a predicted position (log), the mean speed, the largest area change,
    the share of track-frames where a shape is neither seen nor covered.

Each object number is standardised by its mean and spread on real clips of the same size and
length (256 clips of seed 777, tracked once per process), with the spread floored at `FLOOR`
(some are constant on real clips). The six event indicators are then weighted by
`EVENT_WEIGHT`: each is one rare bit per video, and FVD's noise between two real sets grows with
the number of dimensions, so the continuous numbers would otherwise drown them; a set where a
quarter of the videos break a rule then lands far outside the real-vs-real spread
(bench/RESULTS.md has the sensitivity table, designed and held-out failures).

Videos that are not moving shapes are tracked all the same (their object numbers land far from
the real ones, as their other features do); `vidm-rt eval` reports their object failures as not
of this domain, and uses this extractor by default only against real moving shapes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np

from .features import SIZE, ShippedFeatures, to_working_size
from .tracker import EVENTS, VideoObjects, as_unit_frames, track_set, track_video

FLOOR = 0.1
EVENT_WEIGHT = 3.0         # the six event indicators; the other object numbers weigh 1
STATS_SEED = 777
STATS_VIDEOS = 256
NAMES = ("shapes_first", "shapes_last", "shapes_max", "shapes_min",
         *(f"event_{e}" for e in EVENTS), "log_max_error", "mean_speed", "max_area_change",
         "missing")
WEIGHTS = np.array([EVENT_WEIGHT if n.startswith("event_") else 1.0 for n in NAMES])


def object_numbers(o: VideoObjects) -> np.ndarray:
    """One video's 14 object numbers (NAMES), raw."""
    events = [float(o.events[e] is not None) for e in EVENTS]
    return np.array([o.counts[0], o.counts[-1], max(o.counts), min(o.counts), *events,
                     np.log(o.max_error + 0.01), 10 * o.mean_speed,
                     min(o.max_area_change, 2.0), o.missing], np.float64)


@functools.lru_cache(maxsize=4)
def real_object_stats(frames: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(mean, floored std) of the object numbers on real clips of this length and size."""
    from ..data import MovingShapesSpec
    from ..video import to_uint8
    from .videos import shapes_clips

    clips = to_uint8(shapes_clips(STATS_VIDEOS, MovingShapesSpec(size=size, frames=frames),
                                  STATS_SEED))
    numbers = np.stack([object_numbers(o) for o in track_set(clips)])
    return numbers.mean(axis=0), np.maximum(numbers.std(axis=0), FLOOR)


class ObjectFeatures:
    """`features(videos)` -> (N, 47 + 14): the shipped features, then the object numbers.

    `tracks(videos)` keeps the last few sets' tracks, so a report of the object failures of a
    set whose features were just computed does not track it again."""

    name = "objects"

    def __init__(self, shipped: ShippedFeatures | None = None) -> None:
        self.shipped = shipped or ShippedFeatures()
        self._tracks: dict[str, list[VideoObjects]] = {}

    def tracks(self, videos: np.ndarray) -> list[VideoObjects]:
        """Every video tracked at the working size; memoised by content (the last 4 sets)."""
        key = hashlib.sha1(videos.tobytes()).hexdigest() + str(videos.shape)
        if key not in self._tracks:
            small = (videos if videos.shape[2:4] == (SIZE, SIZE) else
                     np.round(to_working_size(videos) * 255).astype(np.uint8)
                     .transpose(0, 1, 3, 4, 2))
            if len(self._tracks) >= 4:
                del self._tracks[next(iter(self._tracks))]
            self._tracks[key] = [track_video(v) for v in as_unit_frames(small)]
        return self._tracks[key]

    def describe(self) -> dict[str, object]:
        d = self.shipped.describe()
        d.update(extractor=self.name, dims=d["dims"] + len(NAMES), object_numbers=list(NAMES),
                 floor=FLOOR, event_weight=EVENT_WEIGHT)
        return d

    def features(self, videos: np.ndarray,
                 on_videos: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, T, H, W, 3) uint8 videos, T >= 3 -> (N, 61)."""
        base = self.shipped.features(videos)
        tracks = self.tracks(videos)
        mean, std = real_object_stats(videos.shape[1])
        numbers = (np.stack([object_numbers(o) for o in tracks]) - mean) / std * WEIGHTS
        if on_videos is not None:
            on_videos(len(videos))
        return np.concatenate([base, numbers], axis=1)
