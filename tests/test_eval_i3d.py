"""The I3D path against the VIDM authors' protocol, with a stand-in TorchScript detector that
records the exact tensor and keyword arguments it receives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from vidm_rt.eval.i3d import I3DFeatures  # noqa: E402

# The stand-in is made with torch.jit.script, which torch 2.x deprecates (the detector's format).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


class Recorder(torch.nn.Module):
    """Keeps the last input and its flags; features: per-channel means of each frame."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = torch.zeros(0)
        self.flags = torch.zeros(3)
        self.calls = 0

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        self.seen = x.clone()
        self.flags = torch.tensor([float(rescale), float(resize), float(return_features)])
        self.calls += 1
        return x.mean(dim=(3, 4)).flatten(1)


class WrongSignature(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _save(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


def _videos(n: int, t: int, h: int, w: int) -> np.ndarray:
    # Distinct content per video, frame and channel, so order and layout errors show.
    rng = np.random.default_rng(0)
    v = rng.integers(0, 256, (n, t, h, w, 3), dtype=np.uint8)
    v[..., 0] = np.arange(t, dtype=np.uint8)[None, :, None, None] * 10  # red codes the frame
    return v


def test_detector_receives_the_protocols_tensor(tmp_path: Path) -> None:
    path = _save(Recorder(), tmp_path / "i3d.pt")
    videos = _videos(5, 4, 12, 20)
    ex = I3DFeatures(path, resolution=16, batch=2)
    feats = ex.features(videos)
    # 5 videos in batches of 2: two whole batches, the fifth left out as the authors do.
    assert ex.detector.calls == 2
    assert feats.shape == (4, 3 * 4)
    seen = ex.detector.seen.numpy()
    assert seen.dtype == np.float32
    assert seen.shape == (2, 3, 4, 16, 16)  # (B, C, T, H, W)
    assert 0.0 <= seen.min() and seen.max() <= 1.0
    np.testing.assert_array_equal(ex.detector.flags.numpy(), [0.0, 1.0, 1.0])
    # The last batch is videos 2 and 3, each frame PIL-bicubic resized, / 255, channels first.
    for b, v in enumerate(videos[2:4]):
        for t, frame in enumerate(v):
            want = np.asarray(Image.fromarray(frame).resize((16, 16), Image.BICUBIC),
                              np.float32) / 255
            np.testing.assert_array_equal(seen[b, :, t], want.transpose(2, 0, 1))
    # The red channel codes the frame index: frame order kept along T.
    np.testing.assert_allclose(seen[0, 0].mean(axis=(1, 2)), np.arange(4) * 10 / 255, atol=1e-6)


def test_bad_detector_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        I3DFeatures(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a TorchScript detector"):
        I3DFeatures(junk)
    state = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, state)
    with pytest.raises(ValueError, match="not a TorchScript detector"):
        I3DFeatures(state)
    wrong = I3DFeatures(_save(WrongSignature(), tmp_path / "wrong.pt"), resolution=8, batch=1)
    with pytest.raises(ValueError, match="calling it as the I3D detector failed"):
        wrong.features(_videos(1, 2, 8, 8))
    with pytest.raises(ValueError, match="no whole batch"):
        I3DFeatures(_save(Recorder(), tmp_path / "r.pt"), batch=4).features(_videos(3, 2, 8, 8))
