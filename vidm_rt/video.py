"""Writing generated videos: .npy, a folder of PNG frames, .gif or .mp4 (numpy only at import).

Every writer produces its output under a temporary name and renames it into place, so a failure
never leaves a half-written file behind. PNG frames need nothing beyond numpy and zlib; .gif needs
Pillow and .mp4 needs imageio with ffmpeg (`pip install 'vidm-rt[video]'`). Reading: the images
that image-to-video starts from (read_image, read_images), and which of them each video gets.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from .atomic import atomic_write, check_replaceable, check_writable

FORMATS = (".npy", ".gif", ".mp4", "dir/")


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """(..., 3, H, W) float in [-1, 1] -> (..., H, W, 3) uint8."""
    x = np.clip((np.asarray(frames, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255)
    return np.moveaxis(x.astype(np.uint8), -3, -1)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG."""
    h, w, c = image.shape
    if c != 3 or image.dtype != np.uint8:
        raise ValueError("png_bytes expects an (H, W, 3) uint8 image")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * 3)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("writing .gif needs Pillow: pip install 'vidm-rt[video]'") from None
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(1, round(1000 / fps)), loop=0)


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ValueError(
            "writing .mp4 needs imageio-ffmpeg: pip install 'vidm-rt[video]'"
        ) from None
    # macro_block_size=1 keeps small frames (32x32) unpadded.
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264",
                            macro_block_size=1) as writer:
        for f in frames:
            writer.append_data(f)


FRAME_NAME = re.compile(r"frame\d{5}\.png")


def holds_only_frames(folder: Path) -> bool:
    """Whether `folder` holds nothing but PNG frames as _write_frames_dir names them."""
    return all(FRAME_NAME.fullmatch(p.name) for p in folder.iterdir())


def _write_frames_dir(frames: np.ndarray, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        (path / f"frame{i:05d}.png").write_bytes(png_bytes(f))


def output_kind(path: str | Path) -> str:
    """'.npy', '.gif', '.mp4' or 'dir/' (a path ending in a separator or without a suffix)."""
    s = str(path)
    if s.endswith(("/", os.sep)) or Path(s).suffix == "":
        return "dir/"
    suffix = Path(s).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: unknown output format {suffix!r}: use .npy, .gif, .mp4 or a folder/"
        )
    return suffix


# Format -> (module to import, the extra that installs it) for the writers that need one.
WRITER_NEEDS = {".gif": (("PIL",), "video"), ".mp4": (("imageio", "imageio_ffmpeg"), "video")}


def check_output(path: str | Path) -> str:
    """Check an output path before any work; returns its kind (see output_kind).

    The format must be known, its writer's optional dependency installed, a file must not
    name an existing folder, and the folder must take new files. Raises ValueError naming
    `path` and the fix."""
    import importlib.util

    kind = output_kind(path)
    path = Path(path)
    if kind != "dir/" and path.is_dir():
        raise ValueError(f"{path}: is a folder; name a file (video{kind}) or write PNG frames "
                         "into a folder with a trailing /")
    if kind == "dir/":
        check_replaceable(path, holds_only_frames)
    modules, extra = WRITER_NEEDS.get(kind, ((), ""))
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"{path}: writing {kind} needs {module}: pip install "
                             f"'vidm-rt[{extra}]' (or write .npy or a folder/ of PNG frames)")
    check_writable(path)
    return kind


def enlarge(video: np.ndarray, scale: int) -> np.ndarray:
    """(..., H, W) -> (..., H*scale, W*scale), each pixel repeated (nearest neighbour)."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if scale == 1:
        return video
    return video.repeat(scale, axis=-2).repeat(scale, axis=-1)


def tile(videos: np.ndarray, columns: int, gap: float = 0.0) -> np.ndarray:
    """(B, F, 3, H, W) -> (F, 3, rows * (H + 1) - 1, columns * (W + 1) - 1): the videos side by
    side in rows of `columns`, a line of value `gap` (mid-grey in [-1, 1]) between them; the
    last row's empty places stay black."""
    b, f, c, h, w = videos.shape
    columns = min(columns, b)
    rows = -(-b // columns)
    out = np.full((f, c, rows * (h + 1) - 1, columns * (w + 1) - 1), gap, np.float32)
    for i in range(rows * columns):
        y, x = (i // columns) * (h + 1), (i % columns) * (w + 1)
        out[:, :, y:y + h, x:x + w] = videos[i] if i < b else -1.0
    return out


def write_video(path: str | Path, video: np.ndarray, fps: float = 8.0,
                scale: int = 1) -> list[Path]:
    """Write (B, F, 3, H, W) or (F, 3, H, W) frames in [-1, 1]; returns the paths written.

    .npy keeps the float array as it is (all videos in one file). Other formats write one output
    per video, suffixed _v0, _v1, ... when B > 1, enlarged `scale` times (nearest neighbour)
    so that a small model's frames can be seen.
    """
    video = np.asarray(video, dtype=np.float32)
    if video.ndim == 4:
        video = video[None]
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected (B, F, 3, H, W) frames, got shape {video.shape}")
    kind = output_kind(path)
    path = Path(path)
    if kind == ".npy":
        with atomic_write(path) as tmp:
            np.save(tmp, video if len(video) > 1 else video[0])
        return [path]
    written = []
    for b, frames in enumerate(to_uint8(enlarge(video, scale))):
        target = path if len(video) == 1 else path.with_name(
            f"{path.stem}_v{b}{path.suffix}"
        )
        with atomic_write(target, directory=kind == "dir/", ours=holds_only_frames) as tmp:
            if kind == "dir/":
                _write_frames_dir(frames, tmp)
            elif kind == ".gif":
                _write_gif(frames, tmp, fps)
            else:
                _write_mp4(frames, tmp, fps)
        written.append(target)
    return written


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


def read_image(path: str | Path, size: int) -> np.ndarray:
    """An image file (.npy (3, H, W) in [-1, 1], or PNG/JPEG) -> (3, size, size) float32 in [-1, 1].

    Images must already be size x size: a wrong size is an error, not a silent resize.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
    else:
        try:
            from PIL import Image
        except ImportError:
            raise ValueError("reading images needs Pillow: pip install 'vidm-rt[video]'") from None
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
        except OSError as e:
            raise ValueError(f"{path}: not a readable image ({e})") from None
        arr = np.moveaxis(rgb, -1, 0) / 127.5 - 1.0
    if arr.shape != (3, size, size):
        raise ValueError(
            f"{path}: image has shape {arr.shape} but the model needs (3, {size}, {size}) "
            f"(an RGB {size}x{size} image)"
        )
    return arr


def read_images(path: str | Path, size: int) -> np.ndarray:
    """Frames to start videos from -> (N, 3, size, size) float32 in [-1, 1].

    `path` is a folder of images (PNG/JPEG/.npy, one image per file, in name order), one image
    file (read_image), or a .npy stack (N, 3, size, size).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images in this folder "
                             f"(looked for {', '.join(IMAGE_SUFFIXES)})")
        return np.stack([read_image(f, size) for f in files])
    if path.suffix.lower() == ".npy" and path.is_file():
        arr = _load_npy(path)
        if arr.ndim == 4:
            if arr.shape[0] < 1 or arr.shape[1:] != (3, size, size):
                raise ValueError(f"{path}: image stack has shape {arr.shape} but the model "
                                 f"needs (N, 3, {size}, {size}) with N >= 1")
            return arr
    return read_image(path, size)[None]


def first_frames_for(images: np.ndarray, first_video: int, batch: int) -> np.ndarray:
    """The frames 0 of videos first_video .. first_video + batch - 1: video v starts from
    images[v mod N], so N images serve any number of videos. (N, C, H, W) -> (batch, C, H, W)."""
    return images[(first_video + np.arange(batch)) % len(images)]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False).astype(np.float32)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from None
