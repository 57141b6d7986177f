"""A first run without friction: outputs checked before any work, folders never clobbered,
atomic writes, the engine-folder summary, enlarged videos."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from vidm_rt.atomic import atomic_write, check_writable, holds
from vidm_rt.cli import main
from vidm_rt.export import ExportOptions, export_checkpoint
from vidm_rt.video import check_output, enlarge, write_video


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and all(f in errors[0] for f in fragments), result.output


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tiny_models):
    from vidm_rt.checkpoint import save_checkpoint

    cfg, content, motion = tiny_models
    tmp = tmp_path_factory.mktemp("first_run")
    ckpt = save_checkpoint(tmp / "m.safetensors", cfg, content, motion)
    path, _ = export_checkpoint(ckpt, ExportOptions(name="e", out_dir=tmp, frames=2, steps=2,
                                                    sampler="ddim"))
    return path


def test_unwritable_out_fails_before_any_work_naming_the_given_path(engine) -> None:
    # /proc takes no new files; the engine is never opened (a missing one would say so).
    result = run("generate", "--engine", "/nonexistent/engine", "--out", "/proc/x.gif")
    one_line_error(result, "/proc/x.gif", "cannot write")
    result = run("generate", "--engine", str(engine), "--out", "video.avi")
    one_line_error(result, "video.avi", "unknown output format")


def test_a_folder_of_other_files_is_never_replaced(engine, tmp_path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    for out in (str(keep), f"{keep}/"):
        one_line_error(run("generate", "--engine", str(engine), "--out", out), str(keep),
                       "other files")
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    # A folder of frames it wrote is replaced whole (no stale frames from a longer video).
    frames = tmp_path / "frames"
    assert run("generate", "--engine", str(engine), "--out", f"{frames}/", "--frames", "3",
               "-q").exit_code == 0
    assert run("generate", "--engine", str(engine), "--out", f"{frames}/", "--frames", "2",
               "-q").exit_code == 0
    assert sorted(p.name for p in frames.iterdir()) == ["frame00000.png", "frame00001.png"]
    # A file name that names an existing folder.
    (tmp_path / "clip.gif").mkdir()
    one_line_error(run("generate", "--engine", str(engine), "--out", str(tmp_path / "clip.gif")),
                   "clip.gif", "is a folder")


def test_missing_writer_dependency_is_named_before_any_work(tmp_path, monkeypatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "PIL" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r"x\.gif: writing \.gif needs PIL: pip install "
                                         r"'vidm-rt\[video\]'"):
        check_output(tmp_path / "x.gif")
    assert check_output(tmp_path / "x.npy") == ".npy"


def test_engine_given_a_file_says_so(engine) -> None:
    one_line_error(run("generate", "--engine", str(engine / "manifest.json"), "--out", "x.npy"),
                   "is a file, not an export or engine folder")
    one_line_error(run("generate", "--engine", str(engine / "model.safetensors"), "--out",
                       "x.npy"), "vidm-rt export")


def test_info_summarises_an_export_and_json_gives_the_manifest(engine) -> None:
    result = run("info", str(engine))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) <= 8
    assert "tiny model, content + motion" in lines[0]
    assert any(line.startswith("sampler: ddim, 2 steps") for line in lines)
    assert any(line.startswith("runs on: onnxruntime") for line in lines)
    raw = json.loads(run("info", str(engine), "--json").output)
    assert raw["kind"] == "onnx" and raw["sampler"]["steps"] == 2


def test_scale_enlarges_image_outputs_by_nearest_neighbour(engine, tmp_path) -> None:
    video = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4, 5)).astype(np.float32)
    big = enlarge(video, 3)
    assert big.shape == (2, 3, 12, 15)
    assert np.array_equal(big[..., ::3, ::3], video) and np.array_equal(big[..., 2::3, 2::3], video)
    write_video(tmp_path / "f/", video, scale=3)
    from PIL import Image

    assert Image.open(tmp_path / "f" / "frame00000.png").size == (15, 12)
    write_video(tmp_path / "v.npy", video, scale=3)
    assert np.load(tmp_path / "v.npy").shape == video.shape  # .npy keeps the frames as made
    result = run("generate", "--engine", str(engine), "--frames", "1", "--scale", "2", "-q",
                 "--out", str(tmp_path / "g/"))
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g" / "frame00000.png").size == (64, 64)


def test_atomic_write_leaves_nothing_on_error_and_keeps_the_old_target(tmp_path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]
    folder = tmp_path / "out"
    with atomic_write(folder, directory=True, ours=holds("done")) as tmp:
        (tmp / "done").write_text("1")
    with atomic_write(folder, directory=True, ours=holds("done")) as tmp:
        (tmp / "done").write_text("2")
    assert (folder / "done").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["a.json", "out"]
    (folder / "done").unlink()
    (folder / "mine").write_text("x")
    with pytest.raises(ValueError, match="other files"), \
            atomic_write(folder, directory=True, ours=holds("done")):
        pass
    assert os.listdir(folder) == ["mine"]


def test_check_writable_names_the_path(tmp_path) -> None:
    check_writable(tmp_path / "new" / "deeper" / "x.gif")  # created later: fine
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"file/x\.gif: cannot write there: .* not a folder"):
        check_writable(tmp_path / "file" / "x.gif")
