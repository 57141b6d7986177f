"""The shipped FVD extractor: its features, its units, and a small sensitivity check."""

from __future__ import annotations

import numpy as np
import pytest

from vidm_rt.data import MovingShapesSpec
from vidm_rt.eval import degrade
from vidm_rt.eval.features import ShippedFeatures, to_working_size
from vidm_rt.eval.sensitivity import sensitivity
from vidm_rt.eval.videos import moving_shapes_set, shapes_clips

pytest.importorskip("safetensors")


def test_features_have_real_units_on_fresh_real_videos() -> None:
    ex = ShippedFeatures()
    feats = ex.features(moving_shapes_set(128, 16, 32, seed=4242).videos)
    assert feats.shape == (128, 47) and np.isfinite(feats).all()
    # Standardised by real videos' statistics: fresh real videos have mean ~0 and std ~1.
    assert np.abs(feats.mean(axis=0)).max() < 0.5
    assert 0.6 < np.median(feats.std(axis=0)) < 1.4


def test_other_sizes_are_brought_to_the_working_size() -> None:
    big = moving_shapes_set(2, 4, 64, seed=1).videos
    assert to_working_size(big).shape == (2, 4, 3, 32, 32)
    assert ShippedFeatures().features(big).shape == (2, 47)
    with pytest.raises(ValueError, match="at least 3 frames"):
        ShippedFeatures().features(big[:, :2])


def test_degradations_do_what_they_say() -> None:
    rng = np.random.default_rng(0)
    v = shapes_clips(3, MovingShapesSpec(frames=8), seed=5)
    frozen = degrade.freeze(v, 1.0, rng)
    assert (frozen == v[:, :1]).all()
    shuffled = degrade.shuffle(v, 1.0, rng)
    frame_sums = sorted(shuffled[0].sum(axis=(1, 2, 3)))
    assert frame_sums == pytest.approx(sorted(v[0].sum(axis=(1, 2, 3))))
    assert not np.array_equal(shuffled, v)
    for fn in (degrade.noise, degrade.blur, degrade.shuffle, degrade.freeze, degrade.jitter):
        np.testing.assert_array_equal(fn(v, 0.0, rng), v)
    blurred = degrade.blur(v, 1.0, rng)
    assert blurred.mean() == pytest.approx(v.mean(), abs=1e-3)  # blur keeps the mean
    assert np.abs(np.diff(blurred, axis=-1)).mean() < np.abs(np.diff(v, axis=-1)).mean()


@pytest.mark.slow
def test_fvd_rises_with_each_designed_degradation() -> None:
    # The bench's table in small (bench/fvd_sensitivity.py): 64 videos a set, two levels each.
    table = sensitivity(ShippedFeatures(), videos=64, pairs=2, shifts={},
                        levels={"noise": (0.01, 0.05), "blur": (1.0, 2.0),
                                "shuffle": (0.5, 1.0), "freeze": (0.5, 1.0)})
    assert table["a_vs_b"] <= 2 * table["real_vs_real"]["max"]
    for row in table["rows"]:
        assert row["monotonic"], row
        assert all(row["separated"]), row
