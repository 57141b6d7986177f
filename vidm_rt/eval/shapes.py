"""Video quality measures that need no learned network (numpy only).

Moving-shapes statistics: on videos of coloured shapes on a black background, a frame's
foreground is every pixel whose brightest channel is above mid-grey; its blobs are the
4-connected foreground components of at least `min_area` pixels. Per video we measure the
background fraction, blobs per frame, and the mean frame-to-frame displacement of blob
centroids (each blob matched to the nearest centroid in the next frame), in image sides.

The check used for trained models: generated videos must move (mean displacement within a
factor 2 of the real data's) and keep their shapes: on at least 80% of frames the blob count is
inside the real data's range and the background fraction inside the real range widened by 0.02
(the background condition keeps a frame of noise, one huge blob, from passing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Training draws moving-shapes clips with seeds 0..; comparison clips use one it never used.
REAL_CLIPS_SEED = 12345


def psnr_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B, F, C, H, W) videos in [-1, 1] -> PSNR of each frame over the batch (pooled MSE), dB."""
    return _psnr(a, b, axis=(0, 2, 3, 4))


def psnr_per_video(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B, F, C, H, W) videos in [-1, 1] -> (B, F) PSNR of each frame of each video, dB."""
    return _psnr(a, b, axis=(2, 3, 4))


def _psnr(a: np.ndarray, b: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    mse = ((a.astype(np.float64) - b) ** 2).mean(axis=axis)
    return 10 * np.log10(4.0 / np.maximum(mse, 1e-30))


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels of a boolean (H, W) mask: 0 background, 1.. components."""
    h, w = mask.shape
    big = h * w + 1
    labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    # Min-label propagation: each round every pixel takes its neighbours' smallest label.
    while True:
        padded = np.pad(labels, 1, constant_values=big)
        nbr = np.minimum.reduce([padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1],
                                 padded[1:-1, :-2], padded[1:-1, 2:]])
        nbr = np.where(mask, nbr, big)
        if np.array_equal(nbr, labels):
            break
        labels = nbr
    labels = np.where(mask, labels, 0)
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(h, w)  # 0 stays 0 because it is the smallest value present


def default_min_area(size: int) -> int:
    """The smallest blob counted in a size x size frame: 3 pixels at 32, scaled by area."""
    return max(2, round(3 * (size / 32) ** 2))


def blobs(frame: np.ndarray, min_area: int) -> tuple[float, np.ndarray]:
    """(3, H, W) in [-1, 1] -> (background fraction, (N, 2) blob centroids in image sides)."""
    fg = frame.max(axis=0) > 0.0
    labels = label_components(fg)
    h, w = fg.shape
    centroids = []
    for lab in range(1, labels.max() + 1):
        ys, xs = np.nonzero(labels == lab)
        if len(ys) >= min_area:
            centroids.append(((ys.mean() + 0.5) / h, (xs.mean() + 0.5) / w))
    return 1.0 - fg.mean(), np.array(centroids, dtype=np.float64).reshape(-1, 2)


@dataclass
class ShapesStats:
    background_fraction: float
    blobs_per_frame: float
    blob_counts: list[int]
    background_fractions: list[float]
    mean_displacement: float  # image sides per frame

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("blob_counts")
        d.pop("background_fractions")
        return d


def shapes_stats(videos: np.ndarray, min_area: int | None = None) -> ShapesStats:
    """Statistics over (B, F, 3, H, W) videos in [-1, 1]."""
    videos = np.asarray(videos, dtype=np.float32)
    if videos.ndim != 5:
        raise ValueError(f"expected (B, F, 3, H, W) videos, got shape {videos.shape}")
    size = videos.shape[-1]
    min_area = min_area if min_area is not None else default_min_area(size)
    bg, counts, moves = [], [], []
    for video in videos:
        previous = None
        for frame in video:
            frac, cents = blobs(frame, min_area)
            bg.append(frac)
            counts.append(len(cents))
            if previous is not None and len(previous) and len(cents):
                d = np.linalg.norm(previous[:, None, :] - cents[None, :, :], axis=-1)
                moves.extend(d.min(axis=1).tolist())
            previous = cents
    return ShapesStats(
        background_fraction=float(np.mean(bg)),
        blobs_per_frame=float(np.mean(counts)),
        blob_counts=counts,
        background_fractions=bg,
        mean_displacement=float(np.mean(moves)) if moves else 0.0,
    )


@dataclass
class ShapesCheck:
    real: ShapesStats
    generated: ShapesStats
    displacement_ratio: float
    frames_in_range: float
    blob_range: tuple[int, int]
    background_range: tuple[float, float]

    @property
    def moves(self) -> bool:
        return 0.5 <= self.displacement_ratio <= 2.0

    @property
    def keeps_shapes(self) -> bool:
        return self.frames_in_range >= 0.8

    @property
    def passed(self) -> bool:
        return self.moves and self.keeps_shapes

    def to_dict(self) -> dict:
        return {"real": self.real.to_dict(), "generated": self.generated.to_dict(),
                "displacement_ratio": self.displacement_ratio,
                "frames_in_range": self.frames_in_range,
                "blob_range": list(self.blob_range),
                "background_range": list(self.background_range), "moves": self.moves,
                "keeps_shapes": self.keeps_shapes, "passed": self.passed}


def check_shapes(real_videos: np.ndarray, generated_videos: np.ndarray) -> ShapesCheck:
    real, gen = shapes_stats(real_videos), shapes_stats(generated_videos)
    lo, hi = min(real.blob_counts), max(real.blob_counts)
    bg_lo = min(real.background_fractions) - 0.02
    bg_hi = max(real.background_fractions) + 0.02
    inside = np.mean([lo <= c <= hi and bg_lo <= b <= bg_hi
                      for c, b in zip(gen.blob_counts, gen.background_fractions, strict=True)])
    ratio = gen.mean_displacement / real.mean_displacement if real.mean_displacement else 0.0
    return ShapesCheck(real, gen, float(ratio), float(inside), (lo, hi),
                       (float(bg_lo), float(bg_hi)))
