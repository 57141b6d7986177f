"""Object failures planted in real moving-shapes clips, to check what a judge of videos sees.

Each damage redraws a clip of vidm_rt.data.MovingShapes with one rule of its physics broken from
frame `start` on (the middle frame by default), acting on the clip's first shape:

    designed (the object judge and extractor were built to see them)
      appear   a shape of an unused colour pops in          vanish  the shape is gone
      kind     square <-> disc                              colour  another palette colour
      size     its radius x 1.6 (x 0.6 when that would not fit)
      jump     it is moved by a third of the frame, then moves on as before
    held out (not looked at while designing; reported beside the designed ones)
      duplicate  a second shape of the same colour and kind pops in
      stop       it stops where it is                        reverse  it turns back in mid-air
      through    it passes through the wall instead of bouncing
      shrink     its radius shrinks by 8% a frame            blink    it is missing for 2 frames

`damaged_set` spoils a share of a set's clips (the others are left real), as the sensitivity
table in bench/RESULTS.md uses it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data import PALETTE, MovingShapes, MovingShapesSpec, draw_shapes, render_shapes
from ..data import trajectories as paths

# A frame's shapes: positions (n, 2) x, y; radius (n,); colours (n, 3); square (n,).
Frame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Damage = Callable[[list[Frame], int, np.random.Generator], list[Frame]]


def _edit(frames: list[Frame], start: int, fn: Callable[[int, Frame], Frame]) -> list[Frame]:
    return [f if i < start else fn(i, f) for i, f in enumerate(frames)]


def _with_first(frame: Frame, pos=None, radius=None, colour=None, square=None) -> Frame:
    p, r, c, s = (a.copy() for a in frame)
    if pos is not None:
        p[0] = pos
    if radius is not None:
        r[0] = radius
    if colour is not None:
        c[0] = colour
    if square is not None:
        s[0] = square
    return p, r, c, s


def _unused_colour(frame: Frame, rng: np.random.Generator) -> np.ndarray:
    used = {int(np.argmin(np.linalg.norm(PALETTE - c, axis=1))) for c in frame[2]}
    return PALETTE[rng.choice([i for i in range(len(PALETTE)) if i not in used])]


def _new_shape(frames: list[Frame], start: int, rng: np.random.Generator,
               colour: np.ndarray | None, square: bool | None) -> list[Frame]:
    spec = MovingShapesSpec(min_shapes=1, max_shapes=1)
    pos, vel, radius, _, sq = draw_shapes(rng, spec)
    colour = _unused_colour(frames[start], rng) if colour is None else colour
    square = bool(sq[0]) if square is None else square
    track = paths(pos, vel, radius, len(frames) - start)

    def add(i: int, f: Frame) -> Frame:
        return (np.concatenate([f[0], track[i - start]]), np.concatenate([f[1], radius]),
                np.concatenate([f[2], colour[None]]), np.concatenate([f[3], [square]]))

    return _edit(frames, start, add)


def appear(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    return _new_shape(frames, start, rng, None, None)


def duplicate(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    return _new_shape(frames, start, rng, frames[0][2][0], bool(frames[0][3][0]))


def vanish(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    return _edit(frames, start, lambda i, f: tuple(a[1:] for a in f))


def blink(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    return [tuple(a[1:] for a in f) if start <= i < start + 2 else f
            for i, f in enumerate(frames)]


def kind(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    return _edit(frames, start, lambda i, f: _with_first(f, square=not f[3][0]))


def colour(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    new = _unused_colour(frames[start], rng)
    return _edit(frames, start, lambda i, f: _with_first(f, colour=new))


def size(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    r = frames[0][1][0]
    new = r * 1.6 if r * 1.6 < min(frames[start][0][0].min(), 1 - frames[start][0][0].max()) \
        else r * 0.6
    return _edit(frames, start, lambda i, f: _with_first(f, radius=new))


def shrink(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    r = frames[0][1][0]
    return _edit(frames, start, lambda i, f: _with_first(f, radius=r * 0.92 ** (i - start + 1)))


def _replan(frames: list[Frame], start: int, pos: np.ndarray, vel: np.ndarray,
            bounce: bool = True) -> list[Frame]:
    """The first shape moves on from `pos` with `vel` from frame `start`."""
    r = frames[0][1][:1]
    n = len(frames) - start
    track = (paths(pos[None], vel[None], r, n)[:, 0] if bounce
             else pos + np.arange(n)[:, None] * vel)
    return _edit(frames, start, lambda i, f: _with_first(f, pos=track[i - start]))


def jump(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    p, r = frames[start][0][0], frames[0][1][0]
    angle = rng.uniform(0, 2 * np.pi)
    target = np.clip(p + np.array([np.cos(angle), np.sin(angle)]) / 3, r, 1 - r)
    vel = frames[start][0][0] - frames[start - 1][0][0]
    return _replan(frames, start, target, vel)


def stop(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    held = frames[start - 1][0][0]
    return _edit(frames, start, lambda i, f: _with_first(f, pos=held))


def reverse(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    prev, here = frames[start - 1][0][0], frames[start - 2][0][0]
    return _replan(frames, start, prev + (here - prev), here - prev)


def through(frames: list[Frame], start: int, rng: np.random.Generator) -> list[Frame]:
    """From `start` on the shape heads for the nearest wall and passes through it."""
    p = frames[start - 1][0][0]
    speed = max(np.linalg.norm(frames[1][0][0] - frames[0][0][0]), 0.04)
    axis = int(np.argmin(np.minimum(p, 1 - p)))
    vel = np.zeros(2)
    vel[axis] = -speed * 1.5 if p[axis] < 0.5 else speed * 1.5
    return _replan(frames, start, p + vel, vel, bounce=False)


DESIGNED: dict[str, Damage] = {"appear": appear, "vanish": vanish, "kind": kind,
                               "colour": colour, "size": size, "jump": jump}
HELD_OUT: dict[str, Damage] = {"duplicate": duplicate, "stop": stop, "reverse": reverse,
                               "through": through, "shrink": shrink, "blink": blink}


def clip_frames(spec: MovingShapesSpec, seed: int, index: int) -> list[Frame]:
    """The shapes of MovingShapes(spec, seed).clip(index), frame by frame."""
    pos, vel, radius, colours, square = draw_shapes(np.random.default_rng([seed, index]), spec)
    return [(p, radius, colours, square) for p in paths(pos, vel, radius, spec.frames)]


def render(frames: list[Frame], size: int) -> np.ndarray:
    """-> (T, 3, size, size) in [-1, 1], as MovingShapes draws it."""
    video = np.stack([render_shapes(p, r, c, s, size) for p, r, c, s in frames])
    return np.ascontiguousarray(np.moveaxis(video, -1, 1))


def damaged_set(name: str, videos: int, spec: MovingShapesSpec, seed: int,
                share: float = 0.25, start: int | None = None) -> np.ndarray:
    """(videos, T, 3, H, W): real clips of (spec, seed), the first round(share * videos) of them
    with the damage `name` from frame `start` (default: the middle frame)."""
    fn = {**DESIGNED, **HELD_OUT}[name]
    start = spec.frames // 2 if start is None else start
    spoiled = round(share * videos)
    out = []
    for i in range(videos):
        if i < spoiled:
            frames = fn(clip_frames(spec, seed, i), start, np.random.default_rng([seed, i, 7]))
            out.append(render(frames, spec.size))
        else:
            out.append(MovingShapes(spec, seed=seed).clip(i))
    return np.stack(out)
