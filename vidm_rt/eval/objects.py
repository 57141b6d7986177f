"""Object physics of the bundled domain: the shapes on a frame (vidm_rt.eval.tracker follows them).

The moving-shapes world (vidm_rt.data.MovingShapes) has known physics: 1-2 shapes from a
six-colour palette (no colour twice in a video), axis-aligned squares or discs of fixed size on a
black background, constant velocity, bouncing off the walls (a shape never leaves the frame).
So on every frame each shape is found by its colour, and each video is checked against the rules
(vidm_rt.eval.tracker):

- appear: a shape that was not in frame 0 shows up (first frame reported);
- vanish: a shape of frame 0 is gone on the last frame and nothing covers where it should be
  (an occlusion that lasts to the end is not a vanish; one that ends is matched back);
- kind / colour / size: a shape turns square <-> disc, changes colour in place, or its area
  changes by more than a third, on two consecutive frames where it is measured cleanly;
- jump: a shape lands further than 0.08 image sides from where its velocity and the walls put it
  (a bounce is predicted, so it is not a jump).

Detection, per frame in [0, 1]: a pixel is foreground when its brightest channel is above
mid-grey; its colour is the palette colour nearest its chromaticity (colour / brightest channel,
which anti-aliasing against black leaves unchanged); blends of two colours at an overlap are far
from every palette colour and are left out. Each colour's 4-connected components with a solid
core are shapes; a shape's area is its coverage summed over the component and a one-pixel ring
(anti-aliased edges count by how much they are covered), its centre the coverage-weighted mean,
its kind the better of a disc and a square template of that area at that centre. A shape touching
the border or another shape is "not clean": it is tracked, but its kind, size and jumps are not
judged on that frame. Areas scale with the frame, so any square size works; a set whose frames do
not look like the domain (a lit background, or foreground mostly off the palette) is reported as
not of this domain instead of being judged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..data import PALETTE

FOREGROUND = 0.5           # brightest channel above mid-grey
COLOUR_TOLERANCE = 0.3     # chromaticity distance to a palette colour (blends are further)
KIND_MARGIN = 0.75         # a kind is decided when one template's error is below 0.75x the other's


@dataclass
class Shape:
    """One shape found on one frame. Positions in image sides (y, x); area in pixels."""

    colour: int
    centre: np.ndarray
    area: float
    kind: str          # "square", "disc" or "?" (not decided)
    clean: bool        # not touching the border or another shape
    mask: np.ndarray   # (H, W) bool: the pixels it covers, ring included


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    return ndimage.label(mask)


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _interior(mask: np.ndarray) -> int:
    """Pixels whose four neighbours are all in the mask: a solid core, not an edge line."""
    p = np.pad(mask, 1)
    core = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return int(core.sum())


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij"))


def _template_error(cover: np.ndarray, window: np.ndarray, centre_px: np.ndarray,
                    area: float) -> tuple[float, float]:
    """Squared error of the coverage against a disc and a square of the same area and centre."""
    yy, xx = _pixel_grid(*cover.shape)
    dy, dx = np.abs(yy - centre_px[0]), np.abs(xx - centre_px[1])
    disc = np.clip(0.5 - (np.sqrt(dx**2 + dy**2) - np.sqrt(area / np.pi)), 0, 1)
    square = np.clip(0.5 - (np.maximum(dx, dy) - np.sqrt(area) / 2), 0, 1)
    return (float(((cover - disc)[window] ** 2).sum()),
            float(((cover - square)[window] ** 2).sum()))


def detect(frame: np.ndarray) -> list[Shape]:
    """(H, W, 3) in [0, 1] -> the shapes on it."""
    h, w, _ = frame.shape
    scale = (h * w) / (32 * 32)
    bright = frame.max(axis=-1)
    chroma = frame / np.maximum(bright, 1e-6)[..., None]
    dist = np.linalg.norm(chroma[:, :, None, :] - PALETTE[None, None], axis=-1)
    colour = dist.argmin(axis=-1)
    pure = (bright > FOREGROUND) & (dist.min(axis=-1) < COLOUR_TOLERANCE)
    found: list[tuple[int, np.ndarray]] = []
    for c in range(len(PALETTE)):
        labels, n = _components(pure & (colour == c))
        for lab in range(1, n + 1):
            comp = labels == lab
            if comp.sum() >= max(4, 4 * scale) and _interior(comp) >= max(2, 2 * scale):
                found.append((c, comp))
    shapes = []
    taken = np.zeros((h, w), bool)
    for _, comp in found:
        taken |= comp
    rings = [_dilate(comp) & ~(taken & ~comp) for _, comp in found]
    for n, ((c, comp), ring) in enumerate(zip(found, rings, strict=True)):
        p = PALETTE[c]
        cover = np.clip((frame @ p) / float(p @ p), 0.0, 1.0) * ring
        area = float(cover.sum())
        yy, xx = np.nonzero(ring)
        weights = cover[yy, xx]
        centre_px = np.array([(yy + 0.5) @ weights, (xx + 0.5) @ weights]) / max(area, 1e-6)
        # Touching another shape's ring, or cut by the border (the solid part reaches it).
        near_other = any((_dilate(ring) & other).any() for m, other in enumerate(rings) if m != n)
        on_border = comp[0].any() or comp[-1].any() or comp[:, 0].any() or comp[:, -1].any()
        clean = not near_other and not on_border
        kind = "?"
        if clean:
            e_disc, e_square = _template_error(cover, _dilate(ring), centre_px, area)
            if e_square < KIND_MARGIN * e_disc:
                kind = "square"
            elif e_disc < KIND_MARGIN * e_square:
                kind = "disc"
        shapes.append(Shape(c, centre_px / np.array([h, w]), area, kind, clean, ring))
    return shapes


def background_noise(frame: np.ndarray, shapes: list[Shape]) -> float:
    """RMS brightness of the pixels no shape covers (0 on a clean black background)."""
    covered = np.zeros(frame.shape[:2], bool)
    for s in shapes:
        covered |= _dilate(s.mask)
    rest = frame[~covered]
    return float(np.sqrt((rest**2).mean())) if rest.size else 0.0


def domain_problem(videos: np.ndarray) -> str | None:
    """None when (N, T, H, W, 3) videos in [0, 1] look like moving shapes, else why not."""
    n, t, h, w, _ = videos.shape
    if h != w:
        return f"frames are {h}x{w}, not square"
    sample = videos[:: max(1, n // 32), :: max(1, t // 4)].reshape(-1, h, w, 3)
    bright = sample.max(axis=-1)
    if np.median(bright) > 0.25:
        return "the background is not black"
    fg = bright > FOREGROUND
    if fg.sum() == 0:
        return "no foreground at all"
    chroma = sample[fg] / bright[fg][:, None]
    dist = np.linalg.norm(chroma[:, None] - PALETTE[None], axis=-1).min(axis=-1)
    on_palette = float((dist < COLOUR_TOLERANCE).mean())
    if on_palette < 0.5:
        return f"only {on_palette:.0%} of the foreground is in the shapes' palette"
    return None


