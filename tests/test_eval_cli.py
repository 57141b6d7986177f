"""`vidm-rt eval`: the happy paths (sets from files, sets generated from an export) and bad
input as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vidm_rt.cli import main
from vidm_rt.data import MovingShapesSpec
from vidm_rt.eval import degrade
from vidm_rt.eval.videos import shapes_clips
from vidm_rt.video import write_video

pytest.importorskip("safetensors")
FRAMES = 8


def run(*args: str):
    return CliRunner().invoke(main, ["eval", *args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and all(f in errors[0] for f in fragments), result.output


def _stack(path: Path, seed: int, sigma: float = 0.0, n: int = 64) -> Path:
    clips = shapes_clips(n, MovingShapesSpec(frames=FRAMES), seed)
    write_video(path, degrade.noise(clips, sigma, np.random.default_rng(seed)))
    return path


def test_sets_from_files_against_shapes(tmp_path: Path) -> None:
    clean, noisy = _stack(tmp_path / "clean.npy", 1), _stack(tmp_path / "noisy.npy", 2, 0.05)
    out = tmp_path / "report" / "fvd.json"
    result = run("--fake", str(clean), "--fake", str(noisy), "--real-videos", "64",
                 "--json", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [r["source"] for r in report["sets"]] == [str(clean), str(noisy)]
    assert report["real"] == {"source": "moving-shapes(seed=12345)", "videos": 64,
                              "frames": FRAMES}
    assert report["extractor"]["extractor"] == "objects"
    assert report["extractor"]["dims"] == 47 + 14
    clean_fvd, noisy_fvd = (r["fvd"] for r in report["sets"])
    assert 0 < clean_fvd < noisy_fvd
    assert report["fvd"]["mean"] == pytest.approx((clean_fvd + noisy_fvd) / 2)
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert f"{report['fvd']['mean']:.2f}" in result.output
    # Object failures: the real set's and each set's, printed and in the JSON.
    objects = report["objects"]
    assert objects["real"]["videos"] == 64 and "per_video" not in objects["real"]
    assert [r["source"] for r in objects["sets"]] == [str(clean), str(noisy)]
    clean_objects = objects["sets"][0]
    assert clean_objects["shares"]["vanish"]["count"] == 0
    assert clean_objects["shares"]["intact"]["share"] > 0.9
    assert len(clean_objects["per_video"]) == 64
    table = result.output[result.output.index("objects (share"):].splitlines()
    assert table[1].split()[1:] == ["appear", "vanish", "kind", "colour", "size", "jump",
                                    "intact"]
    assert table[2].split()[0] == "real" and table[3].split()[:2] == ["set", "1"]
    vanish = clean_objects["shares"]["vanish"]
    assert f"{vanish['share']:5.1%} [{vanish['ci95'][0]:4.0%},{vanish['ci95'][1]:4.0%}]" \
        in table[3]
    # The built-in real set written to a file gives the same numbers from --real FILE; another
    # real set (other clips) gives other numbers.
    from vidm_rt.eval.shapes import REAL_CLIPS_SEED

    same = _stack(tmp_path / "real.npy", REAL_CLIPS_SEED)
    other = _stack(tmp_path / "other.npy", 3)
    for real, equal in ((same, True), (other, False)):
        again = run("--fake", str(clean), "--fake", str(noisy), "--real", str(real),
                    "--extractor", "objects", "--json", str(tmp_path / "again.json"), "--quiet")
        assert again.exit_code == 0, again.output
        rows = json.loads((tmp_path / "again.json").read_text())["sets"]
        fvds = [r["fvd"] for r in rows]
        assert (fvds == pytest.approx([clean_fvd, noisy_fvd], rel=1e-9)) is equal, fvds
    # Against a real set from a file the default extractor is the shipped one (the object
    # numbers are made for moving shapes).
    shipped = run("--fake", str(clean), "--real", str(same), "--json",
                  str(tmp_path / "shipped.json"), "--quiet")
    assert shipped.exit_code == 0, shipped.output
    assert json.loads((tmp_path / "shipped.json").read_text())["extractor"]["dims"] == 47


@pytest.mark.slow
def test_sets_generated_from_an_export(tmp_path: Path, tiny_models) -> None:
    from vidm_rt.checkpoint import save_checkpoint
    from vidm_rt.export import ExportOptions, export_checkpoint

    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", cfg, content, motion)
    engine, _ = export_checkpoint(ckpt, ExportOptions(name="t", out_dir=tmp_path, batch=16,
                                                      sampler="ddim", steps=2, frames=3))
    out = tmp_path / "fvd.json"
    result = run("--engine", str(engine), "--seeds", "0,1", "--videos", "48", "--frames", "3",
                 "--real-videos", "64", "--threads", "1", "--json", str(out), "--quiet",
                 "--extractor", "shipped")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert len(report["sets"]) == 2 and all(r["videos"] == 48 for r in report["sets"])
    assert "seed 0" in report["sets"][0]["source"] and "seed 1" in report["sets"][1]["source"]
    # Two seeds draw different videos, so their FVDs differ; both are finite and positive.
    a, b = (r["fvd"] for r in report["sets"])
    assert a > 0 and b > 0 and a != b
    # An untrained model draws no shapes: its sets get a note, not object figures.
    assert all("not moving shapes" in r["domain"] for r in report["objects"]["sets"])
    assert report["objects"]["real"]["domain"] is None


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("--fake", str(tmp_path / "empty"), "--quiet"), "no videos in it")
    mixed = tmp_path / "mixed"
    write_video(mixed / "a/", shapes_clips(1, MovingShapesSpec(size=16, frames=4), 0))
    write_video(mixed / "b/", shapes_clips(1, MovingShapesSpec(size=24, frames=4), 0))
    assert_one_line_error(run("--fake", str(mixed), "--quiet"), "frames of different sizes")
    few = _stack(tmp_path / "few.npy", 4, n=10)
    assert_one_line_error(run("--fake", str(few), "--real-videos", "64", "--quiet"),
                          str(few), "at least 62 videos")
    assert_one_line_error(run("--fake", str(few), "--real-videos", "64", "--quiet",
                              "--extractor", "shipped"), str(few), "at least 48 videos")
    junk = tmp_path / "i3d.pt"
    junk.write_bytes(b"\x00 not torchscript")
    assert_one_line_error(run("--fake", str(few), "--i3d", str(junk), "--quiet"),
                          "not a TorchScript detector")
    assert_one_line_error(run("--fake", str(few), "--extractor", "i3d", "--quiet"),
                          "needs --i3d PATH")
    assert_one_line_error(run("--seeds", "a,b", "--engine", str(tmp_path), "--quiet"), "--seeds")
    assert_one_line_error(run("--fake", str(few), "--engine", str(tmp_path), "--quiet"),
                          "not both")


def test_help_explains_the_extractors_and_object_failures() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert all(x in result.output for x in ("objects", "shipped", "i3d", "appears", "intact"))
    assert "never downloaded" in result.output
