"""The `vidm-rt` command line: happy paths and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidm_rt.checkpoint import save_checkpoint
from vidm_rt.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert any(all(f in line for f in fragments) for line in lines), result.output
    assert len([line for line in lines if line.startswith("error")]) <= 1


def test_sample_untrained_preset(tmp_path) -> None:
    out = tmp_path / "v.npy"
    result = run("sample", "--preset", "tiny", "--frames", "2", "--steps", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    video = np.load(out)
    assert video.shape == (2, 3, 32, 32) and np.abs(video).max() <= 1


def test_sample_from_checkpoint_with_first_frame(tmp_path, tiny_models) -> None:
    cfg, _, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "m.safetensors", cfg, motion=motion)
    first = np.zeros((3, 32, 32), np.float32)
    np.save(tmp_path / "first.npy", first)
    out = tmp_path / "frames/"
    result = run("sample", "--ckpt", str(ckpt), "--first-frame", str(tmp_path / "first.npy"),
                 "--frames", "2", "--steps", "1", "--sampler", "ddim", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "frame00000.png", "frame00001.png"]
    # A motion-only checkpoint cannot make frame 0 by itself.
    result = run("sample", "--ckpt", str(ckpt), "--frames", "2", "--steps", "1",
                 "--out", str(tmp_path / "x.npy"))
    assert_one_line_error(result, "give a first frame")
    assert not (tmp_path / "x.npy").exists()


def test_errors_are_one_line(tmp_path) -> None:
    assert_one_line_error(run("sample", "--out", str(tmp_path / "v.avi")), "unknown output format")
    assert_one_line_error(
        run("sample", "--ckpt", str(tmp_path / "nope.safetensors"),
            "--out", str(tmp_path / "a.npy")),
        "no such checkpoint")
    assert_one_line_error(run("sample", "--preset", "huge", "--out", str(tmp_path / "a.npy")),
                          "unknown preset")
    assert_one_line_error(run("import-official", str(tmp_path / "x.pth.tar"), "--out",
                              str(tmp_path / "o.safetensors")), "no such checkpoint")
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"not a pickle")
    result = run("import-official", str(bad), "--out", str(tmp_path / "o.safetensors"))
    assert_one_line_error(result, "bad.pth.tar", "truncated")
    assert not (tmp_path / "o.safetensors").exists()
    assert run("sample", "--bogus").exit_code == 2  # click: unknown option


def test_import_official_names_first_mismatch(tmp_path) -> None:
    from vidm_rt.config import preset
    from vidm_rt.testing.official import official_state

    release = tmp_path / "release.pth.tar"
    torch.save({"ema_state_dict": official_state(preset("tiny")), "iters": 1}, release)
    result = run("import-official", str(release), "--out", str(tmp_path / "o.safetensors"))
    assert_one_line_error(result, "release.pth.tar", "checkpoint key 'module.")
    assert not (tmp_path / "o.safetensors").exists()


def test_info_preset_and_checkpoint(tmp_path, tiny_models) -> None:
    result = run("info", "clevrer128")
    assert result.exit_code == 0
    assert "motion: 194,178,226 parameters (unet 148,615,046, encoder 44,122,880" in result.output
    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "m.safetensors", cfg, content, motion)
    result = run("info", str(ckpt))
    assert result.exit_code == 0 and '"name": "tiny"' in result.output


@pytest.mark.slow
def test_console_script_help() -> None:
    out = subprocess.run([sys.executable, "-m", "vidm_rt.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("sample", "import-official", "info"):
        assert command in out


def test_generate_with_the_bundled_model(tmp_path, monkeypatch) -> None:
    from vidm_rt.cli.common import BUNDLED_MODEL

    if not BUNDLED_MODEL.is_file():
        pytest.skip("no bundled model in this checkout")
    monkeypatch.setenv("VIDM_RT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo.npy"
    result = run("generate", "--frames", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3, 3, 32, 32)
    engines = list((tmp_path / "cache").iterdir())
    assert len(engines) == 1 and (engines[0] / "manifest.json").is_file()
    # Keyed on the export revision too, so a changed export is made again, not reused.
    from vidm_rt.export import EXPORT_REVISION
    from vidm_rt.manifest import load_manifest

    assert engines[0].name.endswith(f"-r{EXPORT_REVISION}")
    assert load_manifest(engines[0]).export_revision == EXPORT_REVISION
    # The second run reuses the exported engine.
    result = run("generate", "--frames", "2", "--out", str(out))
    assert result.exit_code == 0 and "exporting" not in result.output
    assert list((tmp_path / "cache").iterdir()) == engines
