"""The Fréchet distance against its closed form and against scipy's sqrtm."""

from __future__ import annotations

import numpy as np
import pytest

from vidm_rt.eval.fvd import FeatureStats, frechet_distance, spread, trace_sqrt_product


def _methods() -> list[str]:
    try:
        import scipy.linalg  # noqa: F401
    except ImportError:
        return ["eigh"]
    return ["eigh", "scipy"]


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


@pytest.mark.parametrize("method", _methods())
@pytest.mark.parametrize("rotate", [False, True])
def test_closed_form_for_commuting_covariances(method: str, rotate: bool) -> None:
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T commute, so (S1 S2)^(1/2) = Q diag(sqrt(ab)) Q^T
    # and the distance is |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    q = _rotation(d, 1) if rotate else np.eye(d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(FeatureStats(mu1, s1, 100), FeatureStats(mu2, s2, 100), method)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("method", _methods())
def test_scaled_covariance_and_identity(method: str) -> None:
    # Same mean, S2 = c^2 S1: distance (1 - c)^2 Tr S1; identical statistics: 0.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5))
    s = x.T @ x / 40
    mu = rng.normal(size=5)
    one = FeatureStats(mu, s, 40)
    assert frechet_distance(one, FeatureStats(mu, 9 * s, 40), method) == pytest.approx(
        4 * np.trace(s), rel=1e-8)
    assert frechet_distance(one, one, method) == pytest.approx(0.0, abs=1e-8)


def test_eigh_matches_scipy_sqrtm_on_non_commuting_covariances() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    d = 20
    x, y = rng.normal(size=(200, d)), rng.normal(size=(200, d)) @ rng.normal(size=(d, d))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    direct = np.real(np.trace(linalg.sqrtm(s1 @ s2)))
    assert trace_sqrt_product(s1, s2, "eigh") == pytest.approx(direct, rel=1e-8)
    assert trace_sqrt_product(s1, s2, "scipy") == pytest.approx(direct, rel=1e-12)


def test_feature_stats_and_their_limits() -> None:
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(30, 4))
    stats = FeatureStats.of(feats)
    np.testing.assert_allclose(stats.mu, feats.mean(axis=0))
    np.testing.assert_allclose(stats.sigma, np.cov(feats, rowvar=False))
    assert stats.count == 30
    with pytest.raises(ValueError, match="at least 5 videos"):
        FeatureStats.of(feats[:4])
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(stats, FeatureStats.of(rng.normal(size=(30, 3))), "eigh")
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(stats, stats, "svd")


def test_spread() -> None:
    s = spread([1.0, 2.0, 3.0])
    assert s.mean == pytest.approx(2.0)
    assert s.std == pytest.approx(1.0)
    assert s.to_dict()["max"] == 3.0
    assert spread([5.0]).std == 0.0
    with pytest.raises(ValueError):
        spread([])


@pytest.mark.parametrize("values", [[857.01], [857.0, 857.3], [0.5], [30.1, 30.2, 30.15],
                                    [100.0, 1900.0]])
def test_y_axis_labels_differ_and_hold_every_value(values) -> None:
    """One FVD set (a single value) or a narrow spread still gets six distinct tick labels."""
    from vidm_rt.eval.plot import tick_labels, y_range

    lo, hi = y_range(values)
    assert lo < min(values) and max(values) < hi
    assert len(set(tick_labels(lo, hi))) == 6


def test_scatter_plot_puts_points_where_their_values_say(tmp_path) -> None:
    """Quality against time: log-x scatter with error bars; a point further right is slower,
    one higher up has the higher FVD."""
    from PIL import Image

    from vidm_rt.eval.plot import COLOURS, scatter_plot_png

    path = scatter_plot_png(tmp_path / "q.png", {"a": [(1.0, 100.0, 5.0), (100.0, 200.0, 0.0)]},
                            title="t", xlabel="s", ylabel="FVD", guides={"band": 150.0},
                            labels={(1.0, 100.0): "5"})
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (480, 820, 3)
    ys, xs = np.nonzero((img == COLOURS[0]).all(axis=2)[44:435, 60:670])  # inside the axes
    assert xs.size
    low_left = (xs < 100) & (ys > 250)   # (1 s, 100): left and low
    high_right = (xs > 500) & (ys < 100)  # (100 s, 200): right and high
    assert low_left.any() and high_right.any()
    assert not list(tmp_path.glob(".*"))  # written through a temporary name
