"""Video datasets: frame folders, video files, and the procedural moving-shapes set.

Every dataset is a list of clips of F consecutive frames, each clip an (F, 3, S, S) float32
array in [-1, 1] (square centre crop, then bilinear resize to S). Training samples are drawn
from clips by index, so a (seed, step) pair fully determines a batch (see `vidm_rt.train`).

Layouts read from disk:
    root/<class>/<video>/<frame>.png|jpg   (the reference implementation's layout)
    root/<video>/<frame>.png|jpg
    root/**/<video>.mp4|avi|gif|webm|mov    (decoded with imageio; `pip install 'vidm-rt[video]'`)
A file that cannot be read is skipped with a warning naming it.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".gif", ".webm", ".mov", ".mkv"}


class DataError(ValueError):
    """A dataset that cannot be used: the message names the path and the fix."""


def center_crop_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, 3, size, size) float32 in [-1, 1]: centre square, bilinear."""
    from PIL import Image

    f, h, w, _ = frames.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    out = np.empty((f, 3, size, size), np.float32)
    for i, frame in enumerate(frames):
        crop = frame[top:top + side, left:left + side]
        if side != size:
            crop = np.asarray(
                Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)
            )
        out[i] = np.moveaxis(crop, -1, 0).astype(np.float32) / 127.5 - 1.0
    return out


class ClipDataset:
    """Base: `len(ds)` clips, `ds.clip(i)` -> (F, 3, S, S) float32 in [-1, 1]."""

    frames: int
    size: int

    def __len__(self) -> int:
        raise NotImplementedError

    def clip(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def frames_at(self, index: int, ids: list[int]) -> np.ndarray:
        """Some frames of clip `index`: (len(ids), 3, S, S)."""
        return self.clip(index)[ids]


@dataclass
class _ClipRef:
    source: Path
    start: int


class FolderDataset(ClipDataset):
    """Clips from frame folders and video files below `root`."""

    def __init__(self, root: str | Path, frames: int, size: int) -> None:
        self.root, self.frames, self.size = Path(root), frames, size
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        self._lengths: dict[Path, int] = {}
        self._clips: list[_ClipRef] = []
        for source in self._sources():
            n = self._count(source)
            if n is None:
                continue
            if n < frames:
                continue
            self._lengths[source] = n
            # Consecutive, non-overlapping clips of F frames, as the reference cuts its videos.
            self._clips += [_ClipRef(source, s) for s in range(0, n - frames + 1, frames)]
        if not self._clips:
            raise DataError(
                f"{self.root}: no video with at least {frames} frames (expected "
                "root/<class>/<video>/<frame>.png, root/<video>/<frame>.png or video files)"
            )

    def _sources(self) -> list[Path]:
        sources = []
        for path in sorted(self.root.rglob("*")):
            if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
                sources.append(path)
            elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                sources.append(path)
        return sources

    @staticmethod
    def _frame_files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def _count(self, source: Path) -> int | None:
        if source.is_dir():
            return len(self._frame_files(source))
        try:
            return len(_decode_video(source))
        except Exception as e:  # decoders raise many types for corrupt files
            warnings.warn(f"skipping unreadable video {source}: {e}", stacklevel=3)
            return None

    def __len__(self) -> int:
        return len(self._clips)

    def clip(self, index: int) -> np.ndarray:
        return self.frames_at(index, list(range(self.frames)))

    def frames_at(self, index: int, ids: list[int]) -> np.ndarray:
        ref = self._clips[index]
        if ref.source.is_dir():
            files = self._frame_files(ref.source)
            frames = np.stack([_read_rgb(files[ref.start + i]) for i in ids])
        else:
            frames = _decode_video(ref.source)[[ref.start + i for i in ids]]
        return center_crop_resize(frames, self.size)


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise DataError(f"{path}: unreadable frame ({e}); remove or replace it") from None


@functools.lru_cache(maxsize=8)
def _decode_video(path: Path) -> np.ndarray:
    """All frames of a video file as (F, H, W, 3) uint8."""
    try:
        import imageio.v3 as iio
    except ImportError:
        raise DataError("reading video files needs imageio: pip install 'vidm-rt[video]'") from None
    frames = [np.asarray(f)[..., :3] for f in iio.imiter(path)]
    if not frames:
        raise DataError(f"{path}: no frames")
    return np.stack(frames)


@dataclass(frozen=True)
class MovingShapesSpec:
    """Coloured squares and discs moving at constant velocity and bouncing off the walls.

    Edges are anti-aliased (each pixel is blended by the share of it the shape covers), so a
    frame changes smoothly with a shape's position. With hard edges a model learns to decide
    each edge pixel as shape or background, and reduced-precision rounding then moves whole
    edges by a pixel (docs/precision.md).
    """

    size: int = 32
    frames: int = 16
    min_shapes: int = 1
    max_shapes: int = 2
    min_radius: float = 0.1     # in units of the image side
    max_radius: float = 0.16
    min_speed: float = 0.03     # image sides per frame
    max_speed: float = 0.06


PALETTE = np.array(
    [[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.4, 1.0], [1.0, 1.0, 0.2], [1.0, 0.3, 1.0],
     [0.2, 1.0, 1.0]], np.float32
)


def draw_shapes(rng: np.random.Generator, s: MovingShapesSpec) -> tuple[np.ndarray, ...]:
    """A random first frame's shapes: pos (n, 2) x, y, vel (n, 2) per frame, radius (n,), all in
    units of the image side; colours (n, 3) in [0, 1]; square (n,) bool (else a disc)."""
    n = int(rng.integers(s.min_shapes, s.max_shapes + 1))
    radius = rng.uniform(s.min_radius, s.max_radius, n)
    pos = rng.uniform(radius, 1 - radius, (2, n)).T
    angle = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(s.min_speed, s.max_speed, n)
    vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
    colours = PALETTE[rng.choice(len(PALETTE), n, replace=False)]
    square = rng.random(n) < 0.5
    return pos, vel, radius, colours, square


@functools.lru_cache(maxsize=4)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx), each (size, size): pixel centres in image units, so the rendering is resolution
    independent. Cached (read-only) because every frame of every clip uses them."""
    c = (np.arange(size) + 0.5) / size
    grid = np.meshgrid(c, c, indexing="ij")
    for g in grid:
        g.flags.writeable = False
    return grid[0], grid[1]


def render_shapes(pos: np.ndarray, radius: np.ndarray, colours: np.ndarray, square: np.ndarray,
                  size: int) -> np.ndarray:
    """draw_shapes' shapes at pos -> one anti-aliased frame, (size, size, 3) float32 in [-1, 1]
    on a black background; later shapes are drawn over earlier ones."""
    yy, xx = _pixel_centres(size)
    frame = np.full((size, size, 3), -1.0, np.float32)
    for j in range(len(radius)):
        dx, dy = np.abs(xx - pos[j, 0]), np.abs(yy - pos[j, 1])
        if square[j]:
            outside = np.maximum(dx, dy) - radius[j] * 0.85
        else:
            outside = np.sqrt(dx**2 + dy**2) - radius[j]
        # Signed distance in pixels -> pixel coverage (exact for an axis-aligned edge).
        cover = np.clip(0.5 - outside * size, 0.0, 1.0)[..., None]
        frame += cover * (colours[j] * 2 - 1 - frame)
    return frame


def trajectories(pos: np.ndarray, vel: np.ndarray, radius: np.ndarray,
                 frames: int) -> np.ndarray:
    """(frames, n, 2) positions from draw_shapes' start: constant velocity, and a bounce off
    each wall (the position reflected about it, that velocity component flipped)."""
    pos, vel = pos.copy(), vel.copy()
    out = np.empty((frames, *pos.shape))
    for f in range(frames):
        out[f] = pos
        pos = pos + vel
        for axis in range(2):
            low, high = pos[:, axis] < radius, pos[:, axis] > 1 - radius
            pos[low, axis] = 2 * radius[low] - pos[low, axis]
            pos[high, axis] = 2 * (1 - radius[high]) - pos[high, axis]
            vel[low | high, axis] *= -1
    return out


class MovingShapes(ClipDataset):
    """A seeded procedural dataset: clip i is a pure function of (seed, i), nothing on disk."""

    def __init__(self, spec: MovingShapesSpec = MovingShapesSpec(), videos: int = 100_000,
                 seed: int = 0) -> None:
        if spec.min_shapes < 1 or spec.max_shapes < spec.min_shapes:
            raise DataError("moving-shapes needs 1 <= min_shapes <= max_shapes")
        self.spec, self.videos, self.seed = spec, videos, seed
        self.frames, self.size = spec.frames, spec.size

    def __len__(self) -> int:
        return self.videos

    def clip(self, index: int) -> np.ndarray:
        if not 0 <= index < self.videos:
            raise IndexError(index)
        s = self.spec
        rng = np.random.default_rng([self.seed, index])
        pos, vel, radius, colours, square = draw_shapes(rng, s)
        path = trajectories(pos, vel, radius, s.frames)
        video = np.stack([render_shapes(p, radius, colours, square, s.size) for p in path])
        return np.ascontiguousarray(np.moveaxis(video, -1, 1))


def open_dataset(source: str, frames: int, size: int, seed: int = 0) -> ClipDataset:
    """`moving-shapes` (procedural) or a folder path."""
    if source == "moving-shapes":
        return MovingShapes(MovingShapesSpec(size=size, frames=frames), seed=seed)
    return FolderDataset(source, frames, size)


def sample_indices(
    rng: np.random.Generator, clips: int, frames: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clip indices and frame indices k uniform in [1, F-2] (the reference's range)."""
    if frames < 3:
        raise DataError(f"clips need at least 3 frames for motion training, got {frames}")
    return rng.integers(0, clips, batch), rng.integers(1, frames - 1, batch)


def motion_batch(ds: ClipDataset, clip_ids: np.ndarray, ks: np.ndarray) -> dict[str, np.ndarray]:
    """(first frame, frame k, frame k-1, k) for each (clip, k): arrays (B, 3, S, S) and (B,).

    A clip whose frames cannot be read is replaced by the next one, with a warning naming it.
    """
    first, cur, prev = [], [], []
    for i, k in zip(clip_ids, ks, strict=True):
        i, k = int(i), int(k)
        for attempt in range(len(ds)):
            try:
                f0, fk1, fk = ds.frames_at((i + attempt) % len(ds), [0, k - 1, k])
                break
            except DataError as e:
                warnings.warn(f"skipping clip {(i + attempt) % len(ds)}: {e}", stacklevel=2)
        else:
            raise DataError("no readable clip in the dataset")
        first.append(f0)
        prev.append(fk1)
        cur.append(fk)
    return {"first": np.stack(first), "frame": np.stack(cur), "prev": np.stack(prev),
            "k": ks.astype(np.float32)}
