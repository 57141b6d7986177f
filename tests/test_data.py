"""Datasets: moving shapes, frame folders, video files, sampling, bad data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vidm_rt.data import (
    DataError,
    FolderDataset,
    MovingShapes,
    MovingShapesSpec,
    center_crop_resize,
    draw_shapes,
    motion_batch,
    open_dataset,
    render_shapes,
    sample_indices,
)
from vidm_rt.eval.shapes import check_shapes, label_components, shapes_stats


def test_moving_shapes_shapes_determinism_and_motion() -> None:
    ds = MovingShapes(MovingShapesSpec(size=32, frames=16), seed=3)
    a, b = ds.clip(5), ds.clip(5)
    assert a.shape == (16, 3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ds.clip(6))
    assert not np.array_equal(a, MovingShapes(MovingShapesSpec(32, 16), seed=4).clip(5))
    assert a.min() == -1.0 and a.max() <= 1.0
    stats = shapes_stats(np.stack([ds.clip(i) for i in range(8)]))
    assert 0.8 < stats.background_fraction < 0.99
    assert 1 <= stats.blobs_per_frame <= 2
    assert 0.02 < stats.mean_displacement < 0.08  # the spec's 0.03-0.06 sides per frame


def test_moving_shapes_edges_are_antialiased() -> None:
    # Pixel coverage, not a hard mask: a shape's drawn area stays constant as it moves by
    # fractions of a pixel, so a model's output depends smoothly on where the shape is.
    spec = MovingShapesSpec(size=32, frames=16, min_shapes=1, max_shapes=1)
    for i in range(4):
        clip = MovingShapes(spec, seed=5).clip(i)
        cover = (clip.max(axis=1) + 1) / 2  # the brightest channel of every colour is 1.0
        assert ((cover > 0.05) & (cover < 0.95)).any()
        area = cover.sum(axis=(1, 2))
        assert area.max() / area.min() < 1.03


def test_first_frame_is_the_drawn_shapes_and_small_shifts_cost_quadratically() -> None:
    spec = MovingShapesSpec(size=32, frames=4)
    pos, _, radius, colours, square = draw_shapes(np.random.default_rng([5, 2]), spec)
    frame = render_shapes(pos, radius, colours, square, 32)
    assert np.array_equal(np.moveaxis(frame, -1, 0), MovingShapes(spec, seed=5).clip(2)[0])
    # Edge pixels change in proportion to a sub-pixel shift, so the MSE grows with its square
    # (bench/shift_psnr.py turns PSNR targets into shape-position tolerances on this basis).
    mse = [((render_shapes(pos + d / 32, radius, colours, square, 32) - frame) ** 2).mean()
           for d in (0.05, 0.1)]
    assert 3.0 < mse[1] / mse[0] < 5.0


def test_shapes_check_passes_real_and_fails_static_and_noise() -> None:
    real = np.stack([MovingShapes(seed=1).clip(i) for i in range(16)])
    other = np.stack([MovingShapes(seed=2).clip(i) for i in range(16)])
    assert check_shapes(real, other).passed
    static = np.repeat(real[:, :1], 16, axis=1)
    assert not check_shapes(real, static).moves
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    assert not check_shapes(real, noise).keeps_shapes


def test_label_components() -> None:
    mask = np.array([[1, 1, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]], bool)
    labels = label_components(mask)
    assert labels.max() == 3
    assert labels[0, 0] == labels[1, 1] and labels[0, 3] == labels[1, 3]
    assert len({labels[0, 0], labels[0, 3], labels[2, 0]}) == 3


def test_center_crop_resize() -> None:
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, :, 10:50] = 255  # the centre 40x40 square is white, the sides black
    out = center_crop_resize(frames, 20)
    assert out.shape == (2, 3, 20, 20)
    np.testing.assert_allclose(out, 1.0)


def _write_frames(folder, n: int, size=(24, 16)) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", size, (i * 10, 0, 0)).save(folder / f"{i:04d}.png")


def test_frame_folders_both_layouts(tmp_path) -> None:
    _write_frames(tmp_path / "nested" / "classA" / "vid1", 10)
    _write_frames(tmp_path / "flat" / "vid1", 7)
    _write_frames(tmp_path / "flat" / "short", 2)  # fewer than F frames: not a clip
    nested = FolderDataset(tmp_path / "nested", frames=4, size=8)
    assert len(nested) == 2  # 10 frames -> two non-overlapping clips of 4
    clip = nested.clip(1)
    assert clip.shape == (4, 3, 8, 8)
    np.testing.assert_allclose(clip[:, 0, 0, 0], (np.arange(4, 8) * 10) / 127.5 - 1, atol=1e-6)
    assert len(FolderDataset(tmp_path / "flat", frames=4, size=8)) == 1


def test_video_files_and_corrupt_ones_are_skipped(tmp_path) -> None:
    frames = [Image.new("RGB", (16, 16), (0, i * 20, 0)) for i in range(6)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    (tmp_path / "broken.mp4").write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="broken.mp4"):
        ds = open_dataset(str(tmp_path), frames=3, size=16)
    assert len(ds) == 2
    assert ds.frames_at(1, [0, 2]).shape == (2, 3, 16, 16)


def test_motion_samples(tmp_path) -> None:
    ds = MovingShapes(MovingShapesSpec(size=16, frames=8))
    rng = np.random.default_rng(0)
    ids, ks = sample_indices(rng, len(ds), 8, 64)
    assert ks.min() >= 1 and ks.max() <= 6  # k uniform in [1, F-2]
    batch = motion_batch(ds, ids[:4], ks[:4])
    assert batch["first"].shape == batch["frame"].shape == batch["prev"].shape == (4, 3, 16, 16)
    clip = ds.clip(int(ids[0]))
    np.testing.assert_array_equal(batch["prev"][0], clip[ks[0] - 1])
    np.testing.assert_array_equal(batch["frame"][0], clip[ks[0]])
    np.testing.assert_array_equal(batch["first"][0], clip[0])


def test_bad_datasets(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        open_dataset(str(tmp_path / "missing"), 4, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video with at least 4 frames"):
        open_dataset(str(tmp_path / "empty"), 4, 8)
