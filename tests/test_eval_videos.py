"""Reading the video sets FVD compares: folders of videos or frame folders, .npy stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidm_rt.data import MovingShapesSpec
from vidm_rt.eval.videos import moving_shapes_set, read_video_set, shapes_clips
from vidm_rt.video import to_uint8, write_video

pytest.importorskip("PIL")


def _clips(n: int = 3, frames: int = 6) -> np.ndarray:
    return shapes_clips(n, MovingShapesSpec(size=16, frames=frames), seed=3)


def test_npy_frame_folders_and_gifs_read_alike(tmp_path: Path) -> None:
    clips = _clips()
    write_video(tmp_path / "stack.npy", clips)
    write_video(tmp_path / "frames" / "video/", clips)  # video_v0/, video_v1/, ... of PNGs
    npy = read_video_set(tmp_path / "stack.npy", frames=16)
    assert npy.videos.shape == (3, 6, 16, 16, 3) and npy.videos.dtype == np.uint8
    np.testing.assert_array_equal(npy.videos, to_uint8(clips))
    # PNG frames hold exactly what to_uint8 makes: the same set either way.
    np.testing.assert_array_equal(read_video_set(tmp_path / "frames", 16).videos, npy.videos)
    pytest.importorskip("imageio")
    write_video(tmp_path / "gifs" / "v.gif", clips)
    gifs = read_video_set(tmp_path / "gifs", frames=4)
    assert gifs.videos.shape == (3, 4, 16, 16, 3)
    # GIF stores a palette: close to the frames, not always equal.
    assert np.abs(gifs.videos.astype(int) - npy.videos[:, :4]).mean() < 8


def test_shorter_videos_are_used_whole_and_the_set_shares_one_length(tmp_path: Path) -> None:
    long, short = _clips(2, 8), _clips(2, 5)
    write_video(tmp_path / "set" / "a/", long)
    write_video(tmp_path / "set" / "b/", short)
    assert read_video_set(tmp_path / "set", frames=16).frames == 5
    assert read_video_set(tmp_path / "set", frames=3).frames == 3


def test_bad_sets_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        read_video_set(tmp_path / "nothing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos in it"):
        read_video_set(tmp_path / "empty", 16)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"expected a .npy stack \(N, T, 3, H, W\)"):
        read_video_set(bad, 16)
    mixed = tmp_path / "mixed"
    write_video(mixed / "a/", _clips(1))
    write_video(mixed / "b/", shapes_clips(1, MovingShapesSpec(size=24, frames=6), seed=1))
    with pytest.raises(ValueError, match="frames of different sizes"):
        read_video_set(mixed, 16)
    one = tmp_path / "one"
    write_video(one / "a/", _clips(1))
    from PIL import Image

    Image.new("RGB", (8, 8)).save(one / "a" / "zzz.png")
    with pytest.raises(ValueError, match="frames of different sizes"):
        read_video_set(one, 16)


def test_moving_shapes_set_is_seeded() -> None:
    a, b = moving_shapes_set(2, 4, 16, seed=9), moving_shapes_set(2, 4, 16, seed=9)
    np.testing.assert_array_equal(a.videos, b.videos)
    assert not np.array_equal(a.videos, moving_shapes_set(2, 4, 16, seed=10).videos)
