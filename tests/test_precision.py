"""Reduced precision: FP16 graphs, calibration + INT8 QDQ graphs, precision selection, quality."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from vidm_rt.checkpoint import save_checkpoint
from vidm_rt.cli import main
from vidm_rt.eval.precision import (
    diverged_videos,
    generate_videos,
    precision_generator,
    teacher_forced_videos,
)
from vidm_rt.eval.shapes import psnr_per_frame, psnr_per_video
from vidm_rt.export import ExportError, ExportOptions, export_checkpoint
from vidm_rt.export.calibrate import motion_frame, quantize_export
from vidm_rt.export.fp16 import convert_to_fp16, fp16_nodes
from vidm_rt.export.graph_regions import (
    FP16_OPS,
    conditioning_nodes,
    input_convs,
    output_convs,
    residual_stream,
)
from vidm_rt.export.int8 import QuantOptions, node_groups
from vidm_rt.manifest import (
    GraphFile,
    ManifestError,
    load_manifest,
    precision_files,
    sha256_file,
)
from vidm_rt.precision import emulate_fp16
from vidm_rt.runtime import RuntimeOptions, VideoGenerator

STEPS, VIDEOS, FRAMES = 3, 2, 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_models):
    cfg, content, motion = tiny_models
    root = tmp_path_factory.mktemp("export")
    ckpt = save_checkpoint(root / "tiny.safetensors", cfg, content, motion)
    path, _ = export_checkpoint(
        ckpt, ExportOptions(name="tiny", out_dir=root, sampler="ddim", steps=STEPS, frames=FRAMES,
                            fp16_graphs=("content", "motion")))
    return path


@pytest.fixture(scope="module")
def calibrated(exported, tmp_path_factory):
    """A copy of the export calibrated through the CLI: (export dir, calibration dir)."""
    root = tmp_path_factory.mktemp("calibrated")
    engine = root / "tiny"
    shutil.copytree(exported, engine)
    calib = root / "calibration"
    result = CliRunner().invoke(main, ["calibrate", str(engine), "--videos", str(VIDEOS),
                                       "--out", str(calib)])
    assert result.exit_code == 0, result.output
    return engine, calib


def _run(graph, feeds):
    """Output 0 of the graph file or onnx.ModelProto `graph` on the CPU EP."""
    source = graph.SerializeToString() if isinstance(graph, onnx.ModelProto) else str(graph)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _motion_feeds(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = (1, 3, 32, 32)
    return {"x_t": rng.standard_normal(img, np.float32), "t": np.array([700.0], np.float32),
            "k": np.array([3.0], np.float32),
            "flow": rng.uniform(-1, 1, (1, 2, 32, 32)).astype(np.float32),
            "x_first": rng.uniform(-1, 1, img).astype(np.float32)}


def test_fp16_graph_runs_convs_and_products_in_fp16_outside_the_stream(exported) -> None:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(exported / "motion.fp16.onnx")))
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
    types.update({i.name: i.data_type for i in g.initializer})
    fp32, fp16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type == fp32 for v in [*g.input, *g.output])
    # Only convolutions and products compute in FP16; everything between them is FP32.
    half = {n.name for n in g.node if n.op_type != "Cast"
            and any(types.get(x) == fp16 for x in n.input)}
    assert {n.op_type for n in g.node if n.name in half} <= FP16_OPS
    assert all(types[y] == fp32 for n in g.node if n.name not in half and n.op_type != "Cast"
               for y in n.output if y in types and types[y] in (fp32, fp16))
    fp32_model = onnx.load(str(exported / "motion.onnx"))
    convs = {n.name: n for n in fp32_model.graph.node if n.op_type == "Conv"}
    assert half == fp16_nodes(fp32_model)
    assert len(half & set(convs)) > 20  # the data path's convs
    # The last three convs that the other rules leave FP16 stay FP32 (ExportOptions default).
    untailed = fp16_nodes(fp32_model, fp32_tail=0)
    assert untailed - half == set([n for n in convs if n in untailed][-3:])
    assert load_manifest(exported).fp16_fp32_tail == 3
    # FP32: the output conv, the conditioning (PGN) and the residual stream, whose convs are the
    # input convs and the 1x1 skip convs reading the decoder's concatenations.
    (last,) = output_convs(fp32_model)
    stream = residual_stream(fp32_model) & set(convs)
    assert last not in half and not (half & (stream | conditioning_nodes(fp32_model)))
    assert input_convs(fp32_model) < stream
    weights = {i.name: i for i in fp32_model.graph.initializer}
    producer = {y: n for n in fp32_model.graph.node for y in n.output}
    for name in stream - input_convs(fp32_model):
        assert list(weights[convs[name].input[1]].dims[2:]) == [1, 1]
        assert producer[convs[name].input[0]].op_type == "Concat"
    feeds = _motion_feeds()
    want, got = _run(exported / "motion.onnx", feeds), _run(exported / "motion.fp16.onnx", feeds)
    assert got.dtype == np.float32
    assert 0 < np.abs(got - want).max() / (1 + np.abs(want).max()) < 1e-2


def test_fp16_weights_export_puts_the_fp16_weights_in_every_graph(tiny_models, tmp_path) -> None:
    """`export --fp16-weights`: the FP32 graphs and model.safetensors hold exactly the weights
    the FP16 graphs store (scalar graph constants, such as the attention scale, are not weights
    and are rounded in the FP16 graphs only)."""
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", cfg, content, motion)
    result = CliRunner().invoke(main, ["export", str(ckpt), "--name", "w16", "--out-dir",
                                       str(tmp_path), "--steps", "2", "--fp16-weights",
                                       "--fp16-graphs", "content,motion"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "w16"
    assert load_manifest(path).fp16_weights is True
    for graph in ("content", "motion"):  # the flow has no FP16 graph
        fp32 = {i.name: numpy_helper.to_array(i)
                for i in onnx.load(str(path / f"{graph}.onnx")).graph.initializer}
        fp16 = {i.name: numpy_helper.to_array(i)
                for i in onnx.load(str(path / f"{graph}.fp16.onnx")).graph.initializer
                if i.data_type == onnx.TensorProto.FLOAT16 and len(i.dims) and np.prod(i.dims) > 1}
        assert len(fp16) > 10
        for name, half in fp16.items():
            weight = fp32[name.removesuffix("__fp16")]
            np.testing.assert_array_equal(half.astype(np.float32), weight)
    for tensor in load_file(str(path / "model.safetensors")).values():
        np.testing.assert_array_equal(tensor.astype(np.float16).astype(np.float32), tensor)


def test_manifest_lists_every_graph_under_each_precision(calibrated) -> None:
    manifest = load_manifest(calibrated[0])
    precisions = manifest.precisions
    assert set(precisions) == {"fp32", "fp16", "int8"}
    for per in precisions.values():
        assert {g for g in per if not g.endswith(".final")} == set(manifest.graphs)
        assert {spec.file for spec in per.values()} <= set(manifest.files)
    assert precisions["fp16"]["motion"].file == "motion.fp16.onnx"
    assert precisions["int8"]["motion"].file == "motion.int8.onnx"
    assert precisions["int8"]["flow"].file == "flow.onnx"  # kept FP32
    assert precisions["int8"]["update"].file == "update.onnx"


def test_calibration_has_the_expected_count_per_step(calibrated) -> None:
    _, calib = calibrated
    info = json.loads((calib / "calibration.json").read_text())
    assert info["steps"] == STEPS and info["frames"] == FRAMES and info["videos"] == VIDEOS
    for graph in ("content", "motion"):
        assert info["samples"][graph]["per_step"] == [VIDEOS] * STEPS
        with np.load(calib / f"{graph}.npz") as data:
            assert data["x_t"].shape == (VIDEOS * STEPS, 1, 3, 32, 32)
            assert np.bincount(data["step"]).tolist() == [VIDEOS] * STEPS
            assert np.isfinite(data["x_t"]).all()
            if graph == "motion":
                want = [motion_frame(r, s, FRAMES)
                        for r, s in zip(data["run"], data["step"], strict=True)]
                assert data["frame"].tolist() == want
                assert set(want) == set(range(1, FRAMES))  # every motion frame is covered
                # The recorded k is the frame index the generator fed for that frame.
                assert data["k"][:, 0].tolist() == [float(f) for f in want]


def test_int8_graphs_are_qdq_and_run_on_the_cpu(calibrated) -> None:
    engine, _ = calibrated
    model = onnx.load(str(engine / "motion.int8.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10 and "DequantizeLinear" in ops
    # Excluded groups stay FP32: their weights are no DequantizeLinear output.
    fp32 = onnx.load(str(engine / "motion.onnx"))
    groups = node_groups(fp32)
    # Two first convs (UNet input, encoder input), one last conv; PGN: embed Gemm + 2 MLP convs.
    assert len(groups["io"]) == 3 and len(groups["pgn"]) % 3 == 0 and groups["attention"]
    # Stream: the two input convs and the decoder's 1x1 skip convs.
    assert input_convs(fp32) < groups["stream"] and len(groups["stream"]) > 3
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    by_name = {n.name: n for n in model.graph.node}
    for name in groups["io"] | groups["pgn"] | groups["stream"]:
        assert by_name[name].input[1] not in dq_outputs
    quantized = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dq_outputs]
    assert quantized
    # TensorRT's explicit quantization: signed INT8, zero point 0 everywhere.
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    feeds = _motion_feeds(1)
    want, got = _run(engine / "motion.onnx", feeds), _run(engine / "motion.int8.onnx", feeds)
    assert np.abs(got - want).max() / (1 + np.abs(want).max()) < 0.2
    with VideoGenerator(engine, options=RuntimeOptions(precision="int8")) as gen:
        frames = list(gen.generate(3, seed=0))
    assert len(frames) == 3 and all(np.isfinite(f).all() and np.abs(f).max() <= 1 for f in frames)


def test_generate_in_every_precision_on_identical_noise(calibrated) -> None:
    engine, _ = calibrated
    videos = {}
    for p in ("fp32", "fp16", "int8"):
        with VideoGenerator(engine, options=RuntimeOptions(precision=p)) as gen:
            videos[p] = np.stack(list(gen.generate(3, seed=5)), axis=1)
    # Every frame, not only the content frame. Measured minimum over the frames: FP16 85.1 dB,
    # INT8 42.7 dB; the bounds leave 15 and 7 dB for other CPUs and ONNX Runtime versions.
    assert psnr_per_frame(videos["fp16"], videos["fp32"]).min() >= 70
    assert psnr_per_frame(videos["int8"], videos["fp32"]).min() >= 35
    assert not np.array_equal(videos["int8"], videos["fp32"])
    # The noise is what makes the videos agree: on other noise (seed 6) FP32 itself scores
    # 3.3 dB against seed 5, far below either bound.
    with VideoGenerator(engine) as gen:
        other = np.stack(list(gen.generate(3, seed=6)), axis=1)
    assert psnr_per_frame(other, videos["fp32"]).max() < 15


def test_int8_runs_the_final_steps_on_the_fp32_graphs(calibrated, tmp_path) -> None:
    engine, calib = calibrated
    per = load_manifest(engine).precisions["int8"]
    assert per["motion.final"] == GraphFile("motion.onnx", steps=1)  # the default layout
    assert per["content.final"] == GraphFile("content.onnx", steps=1)
    with VideoGenerator(engine, options=RuntimeOptions(precision="int8")) as gen:
        assert [d.graph for d, _ in gen.plan.steps["motion"]] == ["motion"] * (STEPS - 1) + [
            "motion.final"]
        assert sorted(gen.backend.sessions) == ["content", "content.final", "flow", "motion",
                                                "motion.final", "update"]
    assert precision_files(load_manifest(engine), "int8")["motion.final"] == "motion.onnx"
    layouts = {}
    for final in (0, 1, STEPS):
        copy = tmp_path / f"final{final}"
        shutil.copytree(engine, copy)
        quantize_export(copy, calib, QuantOptions(fp32_final_steps=final))
        with VideoGenerator(copy, options=RuntimeOptions(precision="int8")) as g:
            layouts[final] = np.stack(list(g.generate(3, seed=2)), axis=1)
    assert "motion.final" not in load_manifest(tmp_path / "final0").precisions["int8"]
    assert not np.array_equal(layouts[0], layouts[1])
    # Every step on the FP32 graphs is the FP32 video, bit for bit.
    with VideoGenerator(engine) as gen:
        fp32 = np.stack(list(gen.generate(3, seed=2)), axis=1)
    np.testing.assert_array_equal(layouts[STEPS], fp32)
    # The last step carries most of INT8's error into the video (docs/precision.md).
    assert psnr_per_frame(layouts[1], fp32).min() > psnr_per_frame(layouts[0], fp32).min()


def test_quantization_is_deterministic(calibrated, tmp_path) -> None:
    engine, calib = calibrated
    digests = []
    for name in ("a", "b"):
        copy = tmp_path / name
        shutil.copytree(engine, copy)
        quantize_export(copy, calib, QuantOptions())
        digests.append(sha256_file(copy / "motion.int8.onnx"))
        assert not [p for p in copy.iterdir() if p.name.startswith(".")]  # temp dir removed
    assert digests[0] == digests[1] == sha256_file(engine / "motion.int8.onnx")


def _quantized_conv_outputs(path) -> set[str]:
    """The Conv outputs that a QuantizeLinear reads (rounded to INT8 for their consumers)."""
    model = onnx.load(str(path))
    conv_outputs = {y for n in model.graph.node if n.op_type == "Conv" for y in n.output}
    return {n.input[0] for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] in conv_outputs}


def test_quantize_outputs_option(calibrated, tmp_path) -> None:
    engine, calib = calibrated
    assert _quantized_conv_outputs(engine / "motion.int8.onnx")  # the default rounds them
    copy = tmp_path / "inputs-only"
    shutil.copytree(engine, copy)
    quantize_export(copy, calib, QuantOptions(quantize_outputs=False))
    model = onnx.load(str(copy / "motion.int8.onnx"))
    assert not _quantized_conv_outputs(copy / "motion.int8.onnx")
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 0  # inputs still are
    feeds = _motion_feeds(1)
    want, got = _run(engine / "motion.onnx", feeds), _run(copy / "motion.int8.onnx", feeds)
    assert np.abs(got - want).max() / (1 + np.abs(want).max()) < 0.2


def test_int8_variant_rebuilds_the_int8_graph_node_by_node(calibrated) -> None:
    # The bench scripts' per-node INT8 variants (research/variants.py): with every
    # quantized node they compute what the INT8 graph computes, with none what FP32 computes.
    from research.variants import int8_variant, quantized_nodes

    engine, _ = calibrated
    fp32, int8 = (onnx.load(str(engine / f)) for f in ("motion.onnx", "motion.int8.onnx"))
    nodes = quantized_nodes(int8)
    assert {"Conv"} <= {n.op_type for n in int8.graph.node if n.name in nodes}
    feeds = _motion_feeds(3)
    want_int8, want_fp32 = _run(int8, feeds), _run(fp32, feeds)
    every = onnx.load_from_string(int8_variant(fp32, int8, nodes))
    assert np.array_equal(_run(every, feeds), want_int8)
    assert np.array_equal(_run(onnx.load_from_string(int8_variant(fp32, int8, [])), feeds),
                          want_fp32)
    weights = _run(onnx.load_from_string(int8_variant(fp32, int8, nodes, "weights")), feeds)
    activations = _run(onnx.load_from_string(int8_variant(fp32, int8, nodes, "activation")),
                       feeds)
    for part in (weights, activations):
        assert not np.array_equal(part, want_fp32) and not np.array_equal(part, want_int8)


def test_calibration_in_chunks_gives_the_same_minmax_graph(calibrated, tmp_path,
                                                           monkeypatch) -> None:
    # The calibrator sees the samples in chunks (bounded memory); MinMax ranges merge exactly.
    from onnxruntime.quantization.calibrate import MinMaxCalibrater

    import vidm_rt.export.int8 as int8

    assert [int8.calibration_chunk(n) for n in (160, 140, 6, 17, 1)] == [16, 14, 6, 1, 1]
    engine, calib = calibrated
    calls = []
    collect = MinMaxCalibrater.collect_data
    monkeypatch.setattr(MinMaxCalibrater, "collect_data",
                        lambda self, reader: (calls.append(1), collect(self, reader))[1])
    digests, chunks = [], []
    for size in (16, 2):
        monkeypatch.setattr(int8, "CALIBRATION_CHUNK", size)
        copy = tmp_path / f"chunk{size}"
        shutil.copytree(engine, copy)
        calls.clear()
        quantize_export(copy, calib, QuantOptions(calibrate_method="minmax"))
        digests.append(sha256_file(copy / "motion.int8.onnx"))
        chunks.append(len(calls))
    per_graph = VIDEOS * STEPS
    assert chunks == [2, 2 * per_graph // 2]  # content + motion, one chunk each / chunks of 2
    assert digests[0] == digests[1]


def test_precision_selection_and_its_errors(exported, tmp_path) -> None:
    with pytest.raises(ManifestError, match="vidm-rt calibrate"):
        VideoGenerator(exported, options=RuntimeOptions(precision="int8"))
    with pytest.raises(ValueError, match="fp16 autocast needs --device cuda"):
        VideoGenerator(exported, backend="torch", options=RuntimeOptions(precision="fp16"))
    with pytest.raises(ValueError, match="unknown precision"):
        VideoGenerator(exported, options=RuntimeOptions(precision="int4"))
    # An export written before "precisions" existed still runs fp32 from its "graphs".
    old = tmp_path / "old"
    shutil.copytree(exported, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["precisions"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with VideoGenerator(old) as gen:
        assert gen.backend.sessions.keys() == {"content", "flow", "motion", "update"}
    with pytest.raises(ManifestError, match="vidm-rt export"):
        VideoGenerator(old, options=RuntimeOptions(precision="fp16"))


def test_cli_bad_inputs(exported, tmp_path) -> None:
    runner = CliRunner()
    cases = [
        (["calibrate", str(tmp_path / "none")], "no such engine directory"),
        (["generate", "--engine", str(exported), "--precision", "int8", "--frames", "2",
          "--out", str(tmp_path / "v.npy")], "vidm-rt calibrate"),
        (["quality", str(exported), "--videos", "1", "--frames", "2", "--out",
          str(tmp_path / "q")], "vidm-rt calibrate"),
        (["quality", str(tmp_path / "none")], "no such engine directory"),
        (["bench", "--engine", str(exported), "--precision", "fp8"], "--precision"),
        (["quality", str(exported), "--fp16-as", "gpu"], "--fp16-as"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "v.npy").exists() and not (tmp_path / "q").exists()
    assert not (tmp_path / "none").exists()


def test_cli_quality_report(calibrated, tmp_path) -> None:
    engine, _ = calibrated
    out = tmp_path / "quality"
    result = CliRunner().invoke(main, ["quality", str(engine), "--videos", "2", "--frames", "3",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "quality.json").read_text())
    assert report["deterministic_sampler"] and report["sampler"] == "ddim"
    assert report["fp16_as"] == "engine"
    assert set(report["results"]) == {"fp32", "fp16", "int8"}
    for p in ("fp16", "int8"):
        row = report["results"][p]
        assert len(row["psnr_per_frame"]) == len(row["diverged_videos"]) == 3
        # Measured min PSNR: FP16 80.5 dB, INT8 42.9 dB (two unrelated images score about 8);
        # bounds 10 and 7 dB below.
        floor = {"fp16": 70, "int8": 35}[p]
        assert row["min_psnr"] == min(row["psnr_per_frame"]) >= floor
        assert row["diverged_videos"] == sorted(row["diverged_videos"])  # counts only grow
        forced = row["teacher_forced_psnr_per_frame"]
        assert len(forced) == 3 and forced[0] == row["psnr_per_frame"][0]  # same content frame
        assert row["teacher_forced_min_psnr"] == min(forced) >= floor
    assert "diverged" in result.output and "tf min dB" in result.output
    assert "as an FP16 engine computes it" in result.output
    assert "passed" in report["results"]["int8"]["shapes"]
    from PIL import Image

    with Image.open(out / "psnr.png") as img:
        assert img.size == (720, 420)


def test_teacher_forced_fp32_reproduces_fp32(tiny_models, tmp_path) -> None:
    # Conditioned on FP32's own frames, FP32 makes the same frames; with batch 2 and 3 videos
    # the last run is padded and its extra video dropped.
    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", cfg, content, motion)
    path, _ = export_checkpoint(ckpt, ExportOptions(name="b2", out_dir=tmp_path, batch=2,
                                                    sampler="ddim", steps=STEPS))
    with precision_generator(path, "fp32", None, None) as gen:
        reference = generate_videos(gen, 3, FRAMES, 7)
        forced = teacher_forced_videos(gen, reference, reference[:, 0], 7)
    assert forced.shape == reference.shape == (3, FRAMES, 3, 32, 32)
    np.testing.assert_array_equal(forced, reference)


def test_a_video_counts_as_diverged_from_its_first_frame_below_the_threshold() -> None:
    per_video = np.array([[50.0, 40.0, 29.0, 45.0],   # diverges at frame 2, stays counted
                          [28.0, 60.0, 60.0, 60.0],   # at frame 0
                          [60.0, 31.0, 35.0, 30.5]])  # never
    assert diverged_videos(per_video, threshold=30.0).tolist() == [1, 1, 2, 2]


def test_per_video_psnr_pools_to_the_per_frame_psnr() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 2, 3, 8, 8))
    b = a + rng.normal(0, [0.01, 0.1, 0.3], (8, 8, 3, 2, 3)).T  # video v gets noise sigma[v]
    per_video = psnr_per_video(a, b)
    assert per_video.shape == (3, 2)
    assert np.all(np.diff(per_video, axis=0) < 0)  # noisier video, lower PSNR
    pooled_mse = (4.0 * 10 ** (-per_video / 10)).mean(axis=0)
    np.testing.assert_allclose(psnr_per_frame(a, b), 10 * np.log10(4.0 / pooled_mse))

def _half(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def _small_graph(w: np.ndarray) -> onnx.ModelProto:
    """y = sigmoid(x @ w + x) * x."""
    n = w.shape[0]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="matmul"),
             helper.make_node("Add", ["a", "x"], ["b"], name="add"),
             helper.make_node("Sigmoid", ["b"], ["c"], name="sigmoid"),
             helper.make_node("Mul", ["c", "x"], ["y"], name="mul")]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, n])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_emulation_rounds_every_fp16_tensor_as_numpy_does() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 64)).astype(np.float32) / 8
    x = rng.standard_normal((4, 64)).astype(np.float32)
    fp16 = convert_to_fp16(_small_graph(w), half_nodes={"matmul", "add", "sigmoid", "mul"})
    emulated = emulate_fp16(fp16)
    types = {i.elem_type for i in (v.type.tensor_type for v in emulated.graph.value_info)}
    assert {i.data_type for i in emulated.graph.initializer} == {TensorProto.FLOAT}
    # FP16 tensors remain only between the two Casts of a rounding.
    halves = [v.name for v in emulated.graph.value_info
              if v.type.tensor_type.elem_type == TensorProto.FLOAT16]
    assert halves and all(name.endswith("__half") for name in halves) and TensorProto.FLOAT in types

    xh = _half(x)
    a = _half(xh @ _half(w))
    b = _half(a + xh)
    c = _half(1 / (1 + np.exp(-b.astype(np.float64)))).astype(np.float32)
    want = _half(c * xh)
    got = _run(emulated, {"x": x})
    assert np.array_equal(got, _half(got))  # the output is an FP16 value
    ulp = np.abs(want) * 2.0**-10
    assert np.all(np.abs(got - want) <= ulp)  # at most one FP16 step (FP32 summation order)
    assert np.mean(got == want) > 0.95
    fp32 = _run(_small_graph(w), {"x": x})
    assert np.abs(got - fp32).max() > 10 * np.abs(got - want).max()


def test_emulating_an_fp32_graph_changes_nothing(exported) -> None:
    rng = np.random.default_rng(1)
    model = onnx.load(str(exported / "content.onnx"))
    feeds = {"x_t": rng.standard_normal((1, 3, 32, 32), np.float32),
             "t": np.array([500.0], np.float32)}
    assert np.array_equal(_run(emulate_fp16(model), feeds), _run(model, feeds))


def test_quality_runs_fp16_as_an_engine_or_as_onnxruntime(exported) -> None:
    def video(precision: str, fp16_as: str = "engine") -> np.ndarray:
        with precision_generator(exported, precision, None, None, fp16_as) as gen:
            return generate_videos(gen, 1, 2, seed=0)

    fp32, engine, onnxruntime = video("fp32"), video("fp16"), video("fp16", "onnxruntime")
    assert not np.array_equal(engine, onnxruntime)
    assert psnr_per_frame(engine, fp32).min() > 30
    assert psnr_per_frame(onnxruntime, fp32).min() > 30


def test_motion_only_export_calibrates_and_compares_from_given_first_frames(tiny_models,
                                                                           tmp_path) -> None:
    # Like the released checkpoint: no content model, so the images to start from are given.
    cfg, _, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "m.safetensors", cfg, motion=motion)
    engine, _ = export_checkpoint(ckpt, ExportOptions(name="m", out_dir=tmp_path, batch=2,
                                                      sampler="ddim", steps=STEPS, frames=FRAMES))
    with pytest.raises(ExportError, match="nothing in FP16"):
        export_checkpoint(ckpt, ExportOptions(name="c", out_dir=tmp_path, fp16_graphs=("content",)))
    firsts = np.random.default_rng(3).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "firsts.npy", firsts)
    runner, calib = CliRunner(), tmp_path / "calibration"
    result = runner.invoke(main, ["calibrate", str(engine), "--videos", "2", "--out", str(calib)])
    assert result.exit_code == 2 and "--first-frames" in result.output, result.output
    assert not calib.exists() and "int8" not in load_manifest(engine).precisions

    result = runner.invoke(main, ["calibrate", str(engine), "--videos", "2", "--out", str(calib),
                                  "--first-frames", str(tmp_path / "firsts.npy")])
    assert result.exit_code == 0, result.output
    assert "3 images for 4 videos" in result.output  # two runs of batch 2
    info = json.loads((calib / "calibration.json").read_text())
    assert info["first_frames"] == 3 and set(info["samples"]) == {"motion"}
    assert info["samples"]["motion"]["per_step"] == [2] * STEPS
    with np.load(calib / "motion.npz") as data:
        # run r records videos 2r, 2r + 1, which start from images (2r, 2r + 1) mod 3
        for x_first, run in zip(data["x_first"], data["run"], strict=True):
            np.testing.assert_array_equal(x_first, firsts[[2 * run % 3, (2 * run + 1) % 3]])
    int8 = load_manifest(engine).precisions["int8"]
    assert int8["motion"].file == "motion.int8.onnx" and "content" not in int8

    # generate takes the same images: video b of the batch starts from image b
    result = runner.invoke(main, ["generate", "--engine", str(engine), "--precision", "int8",
                                  "--frames", "2", "--first-frames", str(tmp_path / "firsts.npy"),
                                  "--out", str(tmp_path / "v.npy")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy")[:, 0], firsts[:2])

    out = tmp_path / "quality"
    result = runner.invoke(main, ["quality", str(engine), "--videos", "3", "--frames", "3",
                                  "--first-frames", str(tmp_path / "firsts.npy"),
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no moving-shapes check" in result.output and "passed" not in result.output
    report = json.loads((out / "quality.json").read_text())
    assert report["first_frames"] == 3
    for p in ("fp16", "int8"):
        row = report["results"][p]
        assert row["shapes"] is None
        assert row["psnr_per_frame"][0] > 200  # the given images, identical in every precision
        # Measured over frames 1-2: FP16 77.6 dB, INT8 41.4 dB; bounds 12 and 6 dB below.
        floor = {"fp16": 65, "int8": 35}[p]
        assert row["min_psnr"] == min(row["psnr_per_frame"][1:]) >= floor
        assert row["teacher_forced_min_psnr"] == min(row["teacher_forced_psnr_per_frame"][1:])
        assert row["teacher_forced_min_psnr"] >= floor


def test_calibrating_a_content_model_refuses_given_first_frames(exported, tmp_path) -> None:
    np.save(tmp_path / "first.npy", np.zeros((3, 32, 32), np.float32))
    result = CliRunner().invoke(main, ["calibrate", str(exported), "--videos", "1",
                                       "--first-frames", str(tmp_path / "first.npy"),
                                       "--out", str(tmp_path / "calib")])
    assert result.exit_code == 2 and "leave out the first frames" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "calib").exists()


def test_fp16_graphs_picks_the_denoisers_that_run_in_fp16(tiny_models, tmp_path) -> None:
    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", cfg, content, motion)
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(ckpt), "--name", "m16", "--out-dir",
                                  str(tmp_path), "--steps", "2", "--fp16-graphs", "motion"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "m16"
    assert not (path / "content.fp16.onnx").exists() and (path / "motion.fp16.onnx").exists()
    fp16 = {g: f.file for g, f in load_manifest(path).precisions["fp16"].items()}
    assert fp16 == {"content": "content.onnx", "flow": "flow.onnx", "motion": "motion.fp16.onnx",
                    "update": "update.onnx"}
    # The content frame is FP32's bit for bit; the motion frames are not.
    with VideoGenerator(path) as gen:
        fp32_video = np.stack(list(gen.generate(3, seed=1)), axis=1)
    with VideoGenerator(path, options=RuntimeOptions(precision="fp16")) as gen:
        fp16_video = np.stack(list(gen.generate(3, seed=1)), axis=1)
    np.testing.assert_array_equal(fp16_video[:, 0], fp32_video[:, 0])
    assert not np.array_equal(fp16_video[:, 1:], fp32_video[:, 1:])
    for bad in ("flow", ","):
        result = runner.invoke(main, ["export", str(ckpt), "--name", "x", "--out-dir",
                                      str(tmp_path), "--fp16-graphs", bad])
        assert result.exit_code == 2 and "choose one or both of content, motion" in result.output
        assert "Traceback" not in result.output and not (tmp_path / "x").exists()
