"""FVD features from StyleGAN-V's I3D detector, prepared and called as the VIDM authors do.

The detector is the TorchScript file `i3d_torchscript.pt` that the user supplies (`--i3d PATH`);
nothing is downloaded. The protocol (../shared/VIDM.md, "Evaluation"), step by step:
- every frame, RGB uint8, is resized to `resolution` x `resolution` with PIL's bicubic filter
  (also when it is that size already: PIL then returns it unchanged);
- a video's frames are stacked as (T, H, W, C) and scaled to [0, 1] by / 255 (no shift to
  [-1, 1]); a batch is stacked and permuted to (B, C, T, H, W), float32;
- the detector is called as `detector(video, rescale=False, resize=True, return_features=True)`
  and returns (B, 400) features;
- the set is read in order (no shuffling) in `len(set) // batch` whole batches: a remainder of
  fewer than `batch` videos is left out, as the authors' script leaves it out.
One difference, in which frames: the authors' script spreads `nframes` evenly over an .mp4, while
vidm-rt takes every video's first T frames (vidm_rt.eval.videos), the consecutive 16-frame clips
that FVD16 in the literature is computed on; for videos of exactly T frames the two agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# The authors' script's defaults: batch 32, frames resized to 256 x 256.
DEFAULT_BATCH = 32
DEFAULT_RESOLUTION = 256


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_detector(path: str | Path) -> torch.jit.ScriptModule:
    """torch.jit.load(path).eval(), or one line naming what to supply instead."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--i3d {path}: no such file: give the path of StyleGAN-V's I3D "
                         "detector, i3d_torchscript.pt (vidm-rt never downloads it)")
    try:
        with warnings.catch_warnings():
            # torch 2.x deprecates TorchScript, but the detector exists only in that format.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"--i3d {path}: not a TorchScript detector ({_first_line(e)}): give "
                         "StyleGAN-V's "
                         "i3d_torchscript.pt") from None


def preprocess(videos: np.ndarray, resolution: int) -> np.ndarray:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, resolution, resolution) float32 in [0, 1]."""
    from PIL import Image

    out = np.empty((len(videos), videos.shape[1], resolution, resolution, 3), np.float32)
    for b, video in enumerate(videos):
        for t, frame in enumerate(video):
            image = Image.fromarray(frame).resize((resolution, resolution),
                                                  Image.Resampling.BICUBIC)
            out[b, t] = np.asarray(image, dtype=np.float32) / 255.0
    return np.ascontiguousarray(out.transpose(0, 4, 1, 2, 3))


class I3DFeatures:
    """The I3D path: `features(videos)` -> (N // batch * batch, 400)."""

    name = "i3d"

    def __init__(self, path: str | Path, resolution: int = DEFAULT_RESOLUTION,
                 batch: int = DEFAULT_BATCH) -> None:
        self.path, self.resolution, self.batch = Path(path), resolution, batch
        self.detector = load_detector(path)

    def describe(self) -> dict[str, object]:
        return {"extractor": self.name, "detector": str(self.path),
                "resolution": self.resolution, "batch": self.batch}

    def features(self, videos: np.ndarray,
                 on_videos: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        batches = len(videos) // self.batch
        if batches == 0:
            raise ValueError(f"{len(videos)} videos make no whole batch of {self.batch}: give "
                             "more videos or a smaller --batch")
        out = []
        with torch.no_grad():
            for i in range(batches):
                chunk = videos[i * self.batch:(i + 1) * self.batch]
                x = torch.from_numpy(preprocess(chunk, self.resolution))
                try:
                    feats = self.detector(x, rescale=False, resize=True, return_features=True)
                except (RuntimeError, TypeError) as e:
                    raise ValueError(f"--i3d {self.path}: calling it as the I3D detector failed "
                                     f"({_first_line(e)}): give StyleGAN-V's "
                                     "i3d_torchscript.pt") from None
                out.append(np.asarray(feats.detach().cpu().numpy(), dtype=np.float64)
                           .reshape(len(chunk), -1))
                if on_videos is not None:
                    on_videos(len(chunk))
        return np.concatenate(out)
