"""The video sets FVD compares, read into one (N, T, H, W, 3) uint8 array.

A set is one of:
- a folder whose entries, in sorted order, are video files (.mp4, .gif, ...; decoded with imageio,
  the `video` extra) or folders of image frames (read in sorted order), as the VIDM authors'
  evaluation reads its folders;
- a `.npy` stack (N, T, 3, H, W) in [-1, 1], as `vidm-rt generate --batch` writes; converted to
  uint8 exactly as writing its frames to PNG would, so a set scores the same from either;
- the moving-shapes data set (`moving_shapes_set`), the real videos of the bundled domain.

Every video contributes its first T frames, T = min(--frames, the shortest video): a video shorter
than --frames is used whole, and the set shares one length so the features compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import IMAGE_SUFFIXES, VIDEO_SUFFIXES, MovingShapes, MovingShapesSpec
from ..video import to_uint8


@dataclass(frozen=True)
class VideoSet:
    """uint8 videos (N, T, H, W, 3) and where they came from."""

    videos: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def frames(self) -> int:
        return int(self.videos.shape[1])


def _read_frame_folder(folder: Path) -> np.ndarray:
    from PIL import Image

    frames = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise ValueError(f"{path}: unreadable frame ({e}); remove or replace it") from None
    _same_size(frames, folder)
    return np.stack(frames)


def _read_video_file(path: Path) -> np.ndarray:
    try:
        import imageio.v3 as iio
    except ImportError as e:
        raise ImportError("reading video files needs imageio", name="imageio") from e
    try:
        frames = np.asarray(iio.imread(path, index=None))
    except Exception as e:  # decoders raise many types for a corrupt file
        raise ValueError(f"{path}: unreadable video ({e}); remove or replace it") from None
    if frames.ndim == 3:  # greyscale
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"{path}: no frames")
    return frames[..., :3].astype(np.uint8)


def _same_size(frames: list[np.ndarray], where: Path | str) -> None:
    sizes = sorted({f.shape[:2] for f in frames})
    if len(sizes) > 1:
        raise ValueError(f"{where}: frames of different sizes ({sizes[0][0]}x{sizes[0][1]} and "
                         f"{sizes[-1][0]}x{sizes[-1][1]}): resize them to one size first")


def _entries(folder: Path) -> list[Path]:
    entries = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            entries.append(path)
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            entries.append(path)
    return entries


def _trim(videos: list[np.ndarray], frames: int, where: Path | str) -> np.ndarray:
    _same_size([f for v in videos for f in v[:1]], where)
    length = min(frames, *(len(v) for v in videos))
    return np.stack([v[:length] for v in videos])


def read_video_set(source: str | Path, frames: int) -> VideoSet:
    """A folder of videos or frame folders, or a .npy stack (module docstring)."""
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{path}: not found: give a folder of videos or frame folders, or a "
                         ".npy stack (N, T, 3, H, W)")
    if path.is_file():
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{path}: a set is a folder of videos or a .npy stack, not one file")
        stack = np.load(path, allow_pickle=False)
        if stack.ndim != 5 or stack.shape[2] != 3 or 0 in stack.shape:
            raise ValueError(f"{path}: expected a .npy stack (N, T, 3, H, W) in [-1, 1], got "
                             f"shape {stack.shape}")
        return VideoSet(to_uint8(stack[:, :frames]), str(path))
    entries = _entries(path)
    if not entries:
        raise ValueError(f"{path}: no videos in it (expected .mp4/.gif files or folders of "
                         "image frames)")
    videos = [_read_frame_folder(e) if e.is_dir() else _read_video_file(e) for e in entries]
    return VideoSet(_trim(videos, frames, path), str(path))


def shapes_clips(videos: int, spec: MovingShapesSpec, seed: int) -> np.ndarray:
    """(videos, T, 3, S, S) float32 moving-shapes clips in [-1, 1] drawn with `seed`."""
    data = MovingShapes(spec, videos=videos, seed=seed)
    return np.stack([data.clip(i) for i in range(videos)])


def moving_shapes_set(videos: int, frames: int, size: int, seed: int) -> VideoSet:
    """`videos` real moving-shapes clips of `frames` frames at `size`, drawn with `seed`."""
    clips = shapes_clips(videos, MovingShapesSpec(size=size, frames=frames), seed)
    return VideoSet(to_uint8(clips), f"moving-shapes(seed={seed})")
