"""Follow the shapes of a moving-shapes video through it and count what breaks its physics.

Shapes come from vidm_rt.eval.objects.detect, frame by frame. A shape's track predicts its next
position from its velocity, reflected off the walls as the data set bounces it, and a detection
is matched to the nearest prediction: first of the same colour within `GATE`; then of another
colour within `GATE` when the track's own colour is gone from the frame (a colour change in
place); then of the same colour anywhere (colours are unique in a video, so that is a jump). A
detection matched to nothing is a shape that appears; a track matched to nothing moves on as
predicted and is "occluded" while its predicted centre lies under another shape.

Events per video, each with the first frame it happened on (module docstring of
vidm_rt.eval.objects): appear, vanish, kind, colour, size, jump. Per set, `object_report` gives
each event's share of videos with a 95% Wilson interval, the share of intact videos (every shape
of frame 0 kept to the end, none added, none changed) and the background noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .objects import Shape, background_noise, detect, domain_problem

SIZE_TOLERANCE = 0.35      # relative area change that counts as a size change
JUMP_TOLERANCE = 0.08      # image sides from the predicted position (2.6 px at 32x32)
FIRST_JUMP = 0.14          # image sides per frame before a velocity is known (2x the top speed)
GATE = 0.2                 # image sides from its prediction a detection may be to match a track
EVENTS = ("appear", "vanish", "kind", "colour", "size", "jump")
CHANGES = ("appear", "vanish", "kind", "colour", "size")  # what `intact` excludes


@dataclass
class _Track:
    colour: int
    pos: np.ndarray
    radius: float              # image sides, for bounces
    born: int
    last_seen: int
    vel: np.ndarray | None = None
    ref_area: float | None = None
    ref_kind: str | None = None
    odd_size: list[int] = field(default_factory=list)   # current run of frames off in size
    odd_kind: list[int] = field(default_factory=list)
    occluded: bool = False
    clean_run: int = 0         # consecutive frames seen cleanly up to the last one
    area: float = 0.0          # last seen
    under: int | None = None   # the track it went under, when it was last seen touching it

    def predict(self) -> np.ndarray:
        if self.vel is None:
            return self.pos
        pos, r = self.pos + self.vel, self.radius
        return np.where(pos < r, 2 * r - pos, np.where(pos > 1 - r, 2 * (1 - r) - pos, pos))

    def bounce(self, predicted: np.ndarray) -> None:
        """Flip the velocity along each axis the prediction reflected."""
        if self.vel is not None:
            self.vel = np.where(np.isclose(self.pos + self.vel, predicted), self.vel, -self.vel)


@dataclass
class VideoObjects:
    """What the tracker found in one video: events (the first frame of each, or None), shape
    counts, and the physics figures the object-aware FVD extractor uses."""

    events: dict[str, int | None]
    counts: list[int]                 # shapes found per frame
    max_error: float = 0.0            # image sides: worst miss of a prediction on clean frames
    mean_speed: float = 0.0           # image sides per frame
    max_area_change: float = 0.0      # relative, on clean frames
    missing: float = 0.0              # share of track-frames neither seen nor occluded
    background_noise: float = 0.0     # RMS brightness of the background, in [0, 1]

    @property
    def intact(self) -> bool:
        return all(self.events[e] is None for e in CHANGES)

    def to_dict(self) -> dict:
        return asdict(self)


def _radius(shape: Shape, size: int) -> float:
    """The bounce radius in image sides (a square's half side is 0.85 of it, as drawn)."""
    if shape.kind == "square":
        return float(np.sqrt(shape.area) / 2 / 0.85 / size)
    return float(np.sqrt(shape.area / np.pi) / size)


class _Tracker:
    def __init__(self, size: int) -> None:
        self.size = size
        self.tracks: list[_Track] = []
        self.events: dict[str, int | None] = dict.fromkeys(EVENTS)
        self.errors: list[float] = [0.0]
        self.speeds: list[float] = []
        self.area_changes: list[float] = [0.0]
        self.missing = 0
        self.track_frames = 0

    def event(self, name: str, t: int) -> None:
        if self.events[name] is None:
            self.events[name] = t

    def start(self, s: Shape, t: int) -> None:
        self.tracks.append(_Track(s.colour, s.centre, _radius(s, self.size), t, t,
                                  clean_run=int(s.clean), area=s.area))
        self.measure(self.tracks[-1], s, t)

    def measure(self, tr: _Track, s: Shape, t: int) -> None:
        """Kind and size against the shape's first clean measurement, on clean frames; a change
        counts from the first of two consecutive clean frames that show it."""
        if not s.clean:
            return
        if tr.ref_area is None:
            tr.ref_area = s.area
        change = abs(s.area / tr.ref_area - 1)
        self.area_changes.append(change)
        tr.odd_size = tr.odd_size + [t] if change > SIZE_TOLERANCE else []
        if len(tr.odd_size) >= 2:
            self.event("size", tr.odd_size[0])
        if s.kind != "?":
            tr.ref_kind = tr.ref_kind or s.kind
            tr.odd_kind = tr.odd_kind + [t] if s.kind != tr.ref_kind else []
            if len(tr.odd_kind) >= 2:
                self.event("kind", tr.odd_kind[0])

    def follow(self, tr: _Track, s: Shape, predicted: np.ndarray, t: int) -> None:
        step = s.centre - tr.pos
        consecutive = t - tr.last_seen == 1
        if consecutive:
            # Judged only where the positions behind the prediction were measured cleanly (a
            # shape coming out from under another drags its centroid).
            if s.clean and tr.clean_run >= (2 if tr.vel is not None else 1):
                off = float(np.linalg.norm(s.centre - predicted if tr.vel is not None else step))
                if tr.vel is not None:
                    self.errors.append(off)
                if off > (JUMP_TOLERANCE if tr.vel is not None else FIRST_JUMP):
                    self.event("jump", t)
            # The velocity after any bounce, corrected by where the shape actually landed.
            tr.bounce(predicted)
            tr.vel = step if tr.vel is None else tr.vel + (s.centre - predicted)
            self.speeds.append(float(np.linalg.norm(tr.vel)))
        tr.clean_run = tr.clean_run + 1 if s.clean and consecutive else int(s.clean)
        tr.pos, tr.last_seen, tr.occluded, tr.area, tr.under = s.centre, t, False, s.area, None
        if s.clean:
            tr.radius = _radius(s, self.size)
        self.measure(tr, s, t)

    def match(self, shapes: list[Shape], predicted: list[np.ndarray], t: int) -> dict[int, int]:
        """Detection index -> track index (module docstring)."""
        pairs = sorted((float(np.linalg.norm(s.centre - p)), i, j)
                       for i, s in enumerate(shapes) for j, p in enumerate(predicted))
        matched: dict[int, int] = {}
        for same_colour, gated in ((True, True), (False, True), (True, False)):
            for d, i, j in pairs:
                tr = self.tracks[j]
                gate = GATE + 0.05 * (t - 1 - tr.last_seen) if gated else np.inf
                if (i in matched or j in matched.values() or d > gate
                        or (shapes[i].colour == tr.colour) != same_colour):
                    continue
                if not gated:
                    self.event("jump", t)
                elif not same_colour:
                    if any(s.colour == tr.colour for s in shapes):
                        continue  # its own colour is still there: not a change
                    self.event("colour", t)
                    tr.colour = shapes[i].colour
                matched[i] = j
        return matched

    def _cover(self, tr: _Track, seen: dict[int, Shape]) -> int | None:
        """The nearest shape seen now that is big enough to hide `tr`, within the gate."""
        near = [(float(np.linalg.norm(s.centre - tr.pos)), j) for j, s in seen.items()
                if s.area >= 0.7 * tr.area]
        d, j = min(near, default=(np.inf, None))
        return j if d < GATE else None

    def frame(self, shapes: list[Shape], t: int) -> None:
        predicted = [tr.predict() for tr in self.tracks]
        matched = self.match(shapes, predicted, t)
        covered = np.zeros((self.size, self.size), bool)
        for s in shapes:
            covered |= s.mask
        seen = {j: shapes[i] for i, j in matched.items()}
        for j, tr in enumerate(self.tracks):
            if j in seen:
                continue
            if tr.last_seen == t - 1 and tr.clean_run == 0:
                tr.under = self._cover(tr, seen)
            tr.bounce(predicted[j])
            tr.pos = predicted[j]
            y, x = np.clip((predicted[j] * self.size).astype(int), 0, self.size - 1)
            # Hidden: under the shape it was touching when last seen (a hidden shape's own
            # motion is unknown), or under whatever covers where it should be.
            tr.occluded = (tr.under in seen) or bool(covered[y, x])
            self.missing += not tr.occluded
        self.track_frames += len(self.tracks)
        for i, s in enumerate(shapes):
            if i in matched:
                self.follow(self.tracks[matched[i]], s, predicted[matched[i]], t)
            else:
                self.event("appear", t)
                self.start(s, t)


def track_video(video: np.ndarray) -> VideoObjects:
    """(T, H, W, 3) in [0, 1] -> the video's shapes followed through it, and its events."""
    tracker = _Tracker(video.shape[1])
    counts, noise = [], []
    for t, frame in enumerate(video):
        shapes = detect(frame)
        counts.append(len(shapes))
        noise.append(background_noise(frame, shapes))
        if t == 0:
            for s in shapes:
                tracker.start(s, 0)
        else:
            tracker.frame(shapes, t)
    end = len(video) - 1
    if any(tr.born == 0 and tr.last_seen < end and not tr.occluded for tr in tracker.tracks):
        tracker.event("vanish", end)
    return VideoObjects(
        tracker.events, counts, max(tracker.errors),
        float(np.mean(tracker.speeds)) if tracker.speeds else 0.0,
        max(tracker.area_changes), tracker.missing / max(tracker.track_frames, 1),
        float(np.mean(noise)))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a share k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (float(max(0.0, c - half)), float(min(1.0, c + half)))


def as_unit_frames(videos: np.ndarray) -> np.ndarray:
    """(N, T, H, W, 3) uint8 or float in [0, 1] -> float32 in [0, 1]."""
    v = np.asarray(videos)
    return v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v.astype(np.float32)


def track_set(videos: np.ndarray) -> list[VideoObjects] | str:
    """Every video of a set tracked, or why the set is not of this domain."""
    v = as_unit_frames(videos)
    problem = domain_problem(v)
    if problem is not None:
        return f"not moving shapes ({problem}): no object figures"
    return [track_video(video) for video in v]


def object_report(videos: np.ndarray | list[VideoObjects]) -> dict:
    """(N, T, H, W, 3) videos (uint8, or float in [0, 1]) or their tracks -> each event's share
    of videos with its 95% interval, the intact share, background noise and the per-video
    events; a set not of this domain gives {"videos", "domain": why}."""
    per_video = videos if isinstance(videos, list) else track_set(videos)
    if isinstance(per_video, str):
        return {"videos": len(videos), "domain": per_video}
    n = len(per_video)
    shares = {}
    for name in (*EVENTS, "intact"):
        k = sum(o.intact if name == "intact" else o.events[name] is not None for o in per_video)
        shares[name] = {"share": k / n, "count": k, "ci95": list(wilson(k, n))}
    return {"videos": n, "domain": None, "shares": shares,
            "background_noise": float(np.mean([o.background_noise for o in per_video])),
            "per_video": [{"events": o.events, "counts": o.counts} for o in per_video]}
