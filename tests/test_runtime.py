"""Export to ONNX and the static-schedule runtime, against the PyTorch reference."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidm_rt.checkpoint import save_checkpoint
from vidm_rt.cli import main
from vidm_rt.eval.shapes import psnr_per_frame
from vidm_rt.export import ExportError, ExportOptions, export_checkpoint
from vidm_rt.manifest import ManifestError, load_manifest
from vidm_rt.reference import generate_video
from vidm_rt.runtime import VideoGenerator
from vidm_rt.schedule import sampler_table
from vidm_rt.testing.exports import assert_runs_without_torch, export_tiny


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_models):
    return export_tiny(tmp_path_factory.mktemp("export"), tiny_models, sampler="dpmpp2m",
                       steps=4, frames=16)


def test_export_writes_a_verified_manifest(exported) -> None:
    path, errors = exported
    manifest = load_manifest(path)
    assert set(manifest.graphs) == {"content", "flow", "motion", "update"}
    assert set(manifest.files) == {"content.onnx", "flow.onnx", "motion.onnx", "update.onnx",
                                      "motion.fp16.onnx", "model.safetensors"}
    # By default only the motion model runs FP16; the content model (once per video), the flow
    # and the sampler update run FP32 under --precision fp16.
    assert {g: f.file for g, f in manifest.precisions["fp16"].items()} == {
        "content": "content.onnx", "flow": "flow.onnx", "motion": "motion.fp16.onnx",
        "update": "update.onnx"}
    assert manifest.graphs["motion"].inputs["flow"].shape == (1, 2, 32, 32)
    assert manifest.versions["onnx_opset"] == 18
    assert manifest.fp16_weights is False
    assert all(err < 1e-4 for name, err in errors.items() if "." not in name), errors
    assert all(err < 1e-2 for name, err in errors.items() if name.endswith(".fp16")), errors
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


@pytest.mark.parametrize("sampler", ["ancestral", "ddim", "dpmpp2m"])
def test_onnxruntime_equals_torch_reference(exported, tiny_models, sampler: str) -> None:
    _, content, motion = tiny_models
    table = sampler_table(sampler, 4)
    gen = VideoGenerator(exported[0], table=table)
    # 17 frames: frames 15 and 16 lie past the training length (16) and run with the clamped
    # frame index 14, as the reference does. Measured: 117-132 dB at the worst frame per
    # sampler, while the extrapolated index (15, 16) scores 33-54 dB on those frames; 90 dB
    # tells the two apart with a 27 dB margin.
    video = np.stack(list(gen.generate(17, seed=11)), axis=1)
    ref = generate_video(motion, table, 17, content=content, seed=11).numpy()
    psnr = psnr_per_frame(video, ref)
    assert psnr.min() >= 90, psnr
    assert np.abs(video).max() <= 1.0


def test_torch_backend_runs_the_same_schedule(exported) -> None:
    ort_video = np.stack(list(VideoGenerator(exported[0]).generate(4, seed=2)), axis=1)
    torch_video = np.stack(list(VideoGenerator(exported[0], backend="torch").generate(4, seed=2)),
                           axis=1)
    assert psnr_per_frame(ort_video, torch_video).min() >= 50


def test_buffers_are_not_reallocated_across_steps(exported) -> None:
    gen = VideoGenerator(exported[0])
    before = gen.backend.buffer_identities()
    arrays = {name: id(a) for name, a in gen.backend.arrays.items()}
    seen = []
    for _ in gen.generate(3, seed=0, on_step=lambda: seen.append(gen.backend.buffer_identities())):
        pass
    assert len(seen) == 3 * gen.table.steps
    assert all(ids == before for ids in seen)
    assert {name: id(a) for name, a in gen.backend.arrays.items()} == arrays


def test_image_to_video_and_batch_addressing(exported, tiny_models, tmp_path) -> None:
    _, _, motion = tiny_models
    first = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32)).astype(np.float32)
    gen = VideoGenerator(exported[0])
    videos = {v: np.stack(list(gen.generate(3, seed=4, first_frame=first, first_video=v)), axis=1)
              for v in (0, 3)}
    np.testing.assert_array_equal(videos[3][0, 0], first)
    # Video 3 of a request draws video 3's noise, as the reference does (measured 126.4 dB),
    # not video 0's (3.2 dB).
    ref = generate_video(motion, gen.table, 3, first_frame=torch.from_numpy(first)[None], seed=4,
                         first_video=3).numpy()
    assert psnr_per_frame(videos[3], ref).min() >= 90
    assert psnr_per_frame(videos[3][:, 1:], videos[0][:, 1:]).max() < 20
    with pytest.raises(ValueError, match="first frame has shape"):
        next(VideoGenerator(exported[0]).generate(2, first_frame=np.zeros((3, 16, 16))))


def test_runtime_never_imports_torch(exported) -> None:
    assert_runs_without_torch(f"""
        from vidm_rt.runtime import VideoGenerator
        frames = list(VideoGenerator({str(exported[0])!r}).generate(3, seed=0))
        assert len(frames) == 3 and frames[2].shape == (1, 3, 32, 32)
    """)


def test_bad_engine_directories(exported, tmp_path) -> None:
    with pytest.raises(ManifestError, match="no such engine directory"):
        VideoGenerator(tmp_path / "missing")
    bad = tmp_path / "tampered"
    shutil.copytree(exported[0], bad)
    with open(bad / "motion.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match="motion.onnx does not match its sha256"):
        VideoGenerator(bad)
    old = tmp_path / "old"
    shutil.copytree(exported[0], old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 0
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="export the model again"):
        VideoGenerator(old)
    (old / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        VideoGenerator(old)


def test_failed_validation_leaves_nothing(tiny_models, tmp_path, monkeypatch) -> None:
    import vidm_rt.export as export_mod

    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "m.safetensors", cfg, motion=motion)
    monkeypatch.setitem(export_mod.TOLERANCE, "flow", -1.0)
    with pytest.raises(ExportError, match="flow error"):
        export_checkpoint(ckpt, ExportOptions(name="bad", out_dir=tmp_path / "out", steps=2))
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_generate_and_errors(exported, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "v.npy"
    result = runner.invoke(main, ["generate", "--engine", str(exported[0]), "--frames", "3",
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3, 3, 32, 32)
    for args, message in [
        (["--batch", "2"], "exported for batch 1"),
        (["--out", str(tmp_path / "v.xyz")], "unknown output format"),
        (["--engine", str(tmp_path / "none")], "no such engine directory"),
        (["--backend", "torch", "--device", "nope"], "device"),
    ]:
        full = ["generate", "--engine", str(exported[0]), "--frames", "2", "--out",
                str(tmp_path / "x.npy"), *args]
        result = runner.invoke(main, full)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.npy").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(main, ["generate", "--engine", str(exported[0]), "--frames", "2",
                                  "--out", str(blocker / "v.npy")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_bench_writes_the_documented_json(exported, tmp_path) -> None:
    result = CliRunner().invoke(main, [
        "bench", "--engine", str(exported[0]), "--frames", "2", "--repeats", "1", "--warmup", "0",
        "--reference-steps", "2", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert {"machine", "date", "preset", "frames", "batch", "results"} <= set(report)
    backends = [r["backend"] for r in report["results"]]
    assert backends == ["onnxruntime", "torch", "reference-loop"]
    for row in report["results"]:
        assert {"backend", "precision", "sampler", "steps", "ms_per_step", "ms_per_frame",
                "frames_per_s", "peak_rss_mb", "speedup_vs_reference_loop"} <= set(row)
        assert row["ms_per_frame"] > 0


def test_batch_of_two_motion_only_export(tiny_models, tmp_path) -> None:
    # A motion-only checkpoint (like the official release) exported for batch 2: image-to-video,
    # every video of the batch equal to the reference on the same noise addresses.
    cfg, _, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "m.safetensors", cfg, motion=motion)
    path, _ = export_checkpoint(
        ckpt, ExportOptions(name="b2", out_dir=tmp_path, batch=2, sampler="ddim", steps=3))
    assert "content" not in load_manifest(path).graphs
    first = np.random.default_rng(1).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    gen = VideoGenerator(path)
    video = np.stack(list(gen.generate(5, seed=9, first_frame=first, first_video=4)), axis=1)
    ref = generate_video(motion, gen.table, 5, first_frame=torch.from_numpy(first), seed=9,
                         batch=2, first_video=4).numpy()
    assert video.shape == (2, 5, 3, 32, 32)
    assert psnr_per_frame(video, ref).min() >= 50
    # Given the video's own frames, a motion frame is the frame generate made.
    for f in range(1, 5):
        np.testing.assert_array_equal(
            gen.motion_frame(f, video[:, 0], video[:, f - 1], seed=9, first_video=4), video[:, f])
    with pytest.raises(ValueError, match="previous frame has shape"):
        gen.motion_frame(1, first, first[:1], seed=9)
    with pytest.raises(ValueError, match="numbered from 1"):
        gen.motion_frame(0, first, first)
    with pytest.raises(ManifestError, match="no content model"):
        next(gen.generate(2))


def test_exported_weights_are_embedded_one_tensor_at_a_time(tiny_models, tmp_path) -> None:
    """export_graph writes the weights beside the graph; embed_weights moves them into it."""
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import uses_external_data

    from vidm_rt.export.graphs import ContentGraph, embed_weights, example_inputs, export_graph

    module = ContentGraph(tiny_models[1])
    path = tmp_path / "content.onnx"
    export_graph(module, "content", example_inputs("content", 1, 3, 32, 32,
                                                    torch.Generator().manual_seed(0)), path, 18)
    assert len(list(tmp_path.iterdir())) == 2  # the graph and its weights
    before = {t.name: numpy_helper.to_array(t, str(tmp_path))
              for t in onnx.load(str(path), load_external_data=False).graph.initializer}
    embed_weights(path)
    assert [p.name for p in tmp_path.iterdir()] == ["content.onnx"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert not any(uses_external_data(t) for t in model.graph.initializer)
    after = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[name], value) for name, value in before.items())
