"""`vidm-rt generate --grid`: a batch tiled into one video; several --out at once."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from vidm_rt.cli import main
from vidm_rt.video import tile


@pytest.fixture(scope="module")
def exported_b2(tmp_path_factory, tiny_models):
    from vidm_rt.testing.exports import export_tiny

    return export_tiny(tmp_path_factory.mktemp("grid"), tiny_models, batch=2, sampler="ddim",
                       steps=2, frames=2)[0]


def test_tile_places_each_video_in_reading_order() -> None:
    videos = np.stack([np.full((2, 3, 4, 5), v, np.float32) for v in (0.1, 0.2, 0.3)])
    grid = tile(videos, 2)
    assert grid.shape == (2, 3, 2 * 5 - 1, 2 * 6 - 1)
    assert np.all(grid[:, :, :4, :5] == 0.1) and np.all(grid[:, :, :4, 6:] == 0.2)
    assert np.all(grid[:, :, 5:, :5] == 0.3) and np.all(grid[:, :, 5:, 6:] == -1.0)
    assert np.all(grid[:, :, 4, :] == 0.0) and np.all(grid[:, :, :, 5] == 0.0)  # grey lines


def test_generate_writes_a_grid_and_keeps_npy_apart(tmp_path, exported_b2) -> None:
    outs = [tmp_path / "grid.gif", tmp_path / "grid.npy"]
    result = CliRunner().invoke(main, ["generate", "--engine", str(exported_b2), "--frames",
                                       "2", "--grid", "2", "--scale", "2", "--quiet",
                                       *[a for o in outs for a in ("--out", str(o))]])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(outs[0]) as gif:
        assert gif.size == (2 * (2 * 32 + 1), 2 * 32) and gif.n_frames == 2
    assert np.load(outs[1]).shape == (2, 2, 3, 32, 32)
