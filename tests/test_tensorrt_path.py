"""The GPU path's shared core on the CPU: frame sequence, binding table, capture/replay, engine
manifest checks, `vidm-rt build` and the TensorRT backend, against a fake CUDA/TensorRT pair
(tests/fake_gpu.py) that executes the launches with numpy and ONNX Runtime.

The fakes run the same ONNX Runtime graphs and the same numpy noise as the reference, so on
the CPU these tests prove binding order, shapes and buffer lifetimes, not GPU numerics
(TensorRT's FP16/INT8 kernels, the CUDA noise kernel): those are checked on a GPU by
tests/test_gpu.py (`pytest -m gpu`, scripts/gpu_check.sh)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests import fake_tensorrt
from tests.fake_gpu import FakeCuda
from tests.fake_tensorrt import FakeConfig, FakeNetwork, FakeParser, make_tensorrt
from vidm_rt.cli import main
from vidm_rt.manifest import (
    ManifestError,
    TensorRTTarget,
    check_tensorrt_target,
    load_manifest,
    precision_files,
    write_manifest,
)
from vidm_rt.manifest_schema import plain
from vidm_rt.runtime import RuntimeOptions, VideoGenerator
from vidm_rt.runtime.bindings import DeviceLayout, TensorInfo, binding_table
from vidm_rt.runtime.frame import CopyBuffer, DrawNoise, RunGraph, ZeroBuffer, frame_ops
from vidm_rt.runtime.plan import build_plan
from vidm_rt.schedule import sampler_table
from vidm_rt.testing.exports import assert_runs_without_torch, video
from vidm_rt.testing.exports import build_tiny as build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_gpu(monkeypatch):
    """(FakeCuda, fake tensorrt module at version 10.12) installed for the code under test."""
    cuda = FakeCuda()
    return cuda, fake_tensorrt.install(monkeypatch, cuda)


# ---- shared core ---------------------------------------------------------------------------


def test_frame_sequence() -> None:
    table = sampler_table("ddim", 4, eta=0.5)
    plan = build_plan(1, 3, 8, 8, table, ("content", "motion"))
    ops = frame_ops(plan, "motion", table)
    assert ops[0] == RunGraph(plan.flow)
    assert ops[1:3] == (DrawNoise("x.0", 0), ZeroBuffer("x0.0"))
    assert ops[-1] == CopyBuffer("x_prev", plan.result)
    expected = []
    for i, (denoise, update) in enumerate(plan.steps["motion"]):
        expected.append(RunGraph(denoise))
        if table.noise_std[i] != 0:
            expected.append(DrawNoise("noise", i + 1))
        expected.append(RunGraph(update))
    assert list(ops[3:-1]) == expected
    assert table.noise_std[-1] == 0 and DrawNoise("noise", 4) not in ops
    content = frame_ops(plan, "content", table)
    # The content frame is the motion frames' conditioning: copied on the device.
    assert content[-2:] == (CopyBuffer("x_first", plan.result), CopyBuffer("x_prev", plan.result))
    assert all(op.launch.graph != "flow" for op in content if isinstance(op, RunGraph))


def test_binding_table_addresses_and_checks() -> None:
    table = sampler_table("ddim", 3)
    plan = build_plan(2, 3, 8, 8, table, ("motion",))
    addresses = {spec.name: 0x10000 * (i + 1) for i, spec in enumerate(plan.buffers)}
    layout = DeviceLayout(plan.buffers, addresses)
    denoise, update = plan.steps["motion"][2]
    io = {name: TensorInfo(name, name in update.inputs, layout.shape(ref), "float32")
          for name, ref in {**update.inputs, **update.outputs}.items()}
    bound = dict(binding_table(update, layout, io, "update engine"))
    # step 2 reads x.0 (2 % 2), writes x.1, and binds row 2 of the coefficient table: rows are
    # 256 bytes apart in device memory (7 floats padded for TensorRT's alignment).
    assert bound["x"] == addresses["x.0"] and bound["x_next"] == addresses["x.1"]
    assert bound["coef"] == addresses["coef"] + 2 * 256
    motion_io = {name: TensorInfo(name, True, layout.shape(ref), "float32")
                 for name, ref in denoise.inputs.items()}
    motion_io["out"] = TensorInfo("out", False, (2, 6, 8, 8), "float32")
    assert dict(binding_table(denoise, layout, motion_io, "m"))["t"] == addresses["t"] + 2 * 256
    bad_shape = {**io, "x": TensorInfo("x", True, (1, 3, 8, 8), "float32")}
    with pytest.raises(ManifestError, match="has shape .*vidm-rt build"):
        binding_table(update, layout, bad_shape, "update engine")
    missing = {k: v for k, v in io.items() if k != "noise"}
    with pytest.raises(ManifestError, match="not the schedule's"):
        binding_table(update, layout, missing, "update engine")
    half = {**io, "x": TensorInfo("x", True, (2, 3, 8, 8), "float16")}
    with pytest.raises(ManifestError, match="float16"):
        binding_table(update, layout, half, "update engine")


def test_engine_target_check() -> None:
    built = TensorRTTarget("10.3.0", "Orin", "8.7", precision="int8", export="export/tiny")
    check_tensorrt_target(built, "engines/tiny", "10.3.0", "Orin", "8.7")
    for have in [("10.4.0", "Orin", "8.7"), ("10.3.0", "NVIDIA H100", "9.0")]:
        with pytest.raises(ManifestError) as err:
            check_tensorrt_target(built, "engines/tiny", *have)
        assert "run `vidm-rt build export/tiny --precision int8` again" in str(err.value)
        assert have[0] in str(err.value) and have[1] in str(err.value)


def test_precision_contract(export_dir) -> None:
    manifest = load_manifest(export_dir)
    assert precision_files(manifest, "fp16")["motion"] == "motion.fp16.onnx"
    assert precision_files(manifest, "fp16")["update"] == "update.onnx"
    assert precision_files(manifest, "fp32")["flow"] == "flow.onnx"
    with pytest.raises(ManifestError, match="no int8 graphs: create them with `vidm-rt calibrate"):
        precision_files(manifest, "int8")
    legacy = replace(manifest, precisions=None)
    assert precision_files(legacy, "fp32") == {g: s.file for g, s in manifest.graphs.items()}
    with pytest.raises(ManifestError, match="`vidm-rt export CKPT`"):
        precision_files(legacy, "fp16")


# ---- vidm-rt build -------------------------------------------------------------------------


@pytest.mark.parametrize("version, strong", [("10.3.0.30", False), ("10.12.0.36", True),
                                             ("11.0.0.1", True)])
def test_build_typing_by_version(export_dir, tmp_path, monkeypatch, version, strong) -> None:
    cuda = FakeCuda()
    trt = fake_tensorrt.install(monkeypatch, cuda, version)
    out = build(export_dir, tmp_path, precision="fp16")
    assert cuda.calls.count("close") == 1   # the device opened for the build is closed
    assert len(trt.builds) == 4
    manifest = load_manifest(out)
    for b in trt.builds:
        assert b["network"].flags == (1 if strong else 0)  # 1 << STRONGLY_TYPED
        # TF32 off everywhere; weakly typed, FP16 only where the graph is an FP16 graph.
        source = Path(b["network"].source).name
        assert b["config"].flags == ({"FP16"} if ".fp16." in source and not strong else set())
        assert not b["config"].profiles  # static shapes: no profile needed
    sources = sorted(Path(b["network"].source).name for b in trt.builds)
    assert sources == ["content.onnx", "flow.onnx", "motion.fp16.onnx", "update.onnx"]
    assert {g: s.precision for g, s in manifest.graphs.items()} == {
        "content": "fp32", "flow": "fp32", "motion": "fp16", "update": "fp32"}
    assert manifest.tensorrt.strongly_typed is strong
    assert manifest.tensorrt.version == version


def test_weakly_typed_fp16_build_pins_the_layers_the_graph_keeps_fp32(export_dir,
                                                                       tmp_path) -> None:
    """TensorRT 10.3 (JetPack 6) lowers any layer under the FP16 flag: every layer whose outputs
    the FP16 graph types FP32 is pinned to FP32, the FP16 convs and products are left free."""
    import onnx

    from vidm_rt.build import _pin_fp32_layers
    from vidm_rt.export.fp16 import convert_to_fp16, fp16_nodes

    trt = make_tensorrt(FakeCuda(), "10.3.0.30")
    fp32_model = onnx.load(str(export_dir / "motion.onnx"))
    onnx.save(convert_to_fp16(fp32_model), str(tmp_path / "motion.fp16.onnx"))
    network, config = FakeNetwork(0), FakeConfig()
    FakeParser(network, None).parse_from_file(str(tmp_path / "motion.fp16.onnx"))
    pinned = _pin_fp32_layers(trt, network, config)
    assert "OBEY_PRECISION_CONSTRAINTS" in config.flags
    layers = {layer.name: layer for layer in network.layers}
    assert pinned == sum(layer.precision == "float32" for layer in network.layers) > 100
    half = fp16_nodes(fp32_model)
    assert all(layers[name].precision is None for name in half)
    for layer in network.layers:
        if layer.type in ("INSTANCENORMALIZATION", "SOFTMAX", "ADD", "SIGMOID"):
            assert layer.precision == "float32" and set(layer.output_types.values()) == {"float32"}
        if layer.type == "CAST":
            assert layer.precision is None and not layer.output_types
    # A graph with no FP16 tensor (the types did not come through): nothing pinned or obeyed.
    network, config = FakeNetwork(0), FakeConfig()
    FakeParser(network, None).parse_from_file(str(export_dir / "motion.onnx"))
    assert _pin_fp32_layers(trt, network, config) is None
    assert "OBEY_PRECISION_CONSTRAINTS" not in config.flags
    assert all(layer.precision is None for layer in network.layers)


def test_build_manifest_options_and_timing_cache(export_dir, tmp_path, fake_gpu) -> None:
    cuda, trt = fake_gpu
    cache = tmp_path / "tc.cache"
    out = build(export_dir, tmp_path, precision="fp16", workspace_mb=256, opt_level=5,
                dla_core=1, timing_cache=cache)
    manifest = load_manifest(out)
    assert manifest.kind == "tensorrt"
    assert sorted(manifest.files) == ["content.plan", "flow.plan", "motion.plan",
                                         "update.plan"]
    assert plain(manifest.tensorrt) | {"export": None} == {
        "version": trt.__version__, "gpu": cuda.device_name, "compute_capability": "8.7",
        "precision": "fp16", "export": None, "strongly_typed": True, "dla_core": 1,
        "workspace_mb": 256, "opt_level": 5}
    assert manifest.sampler.to_dict() == load_manifest(export_dir).sampler.to_dict()
    assert manifest.fp16_weights is True
    config = trt.builds[0]["config"]
    assert config.pools == {"WORKSPACE": 256 << 20} and config.builder_optimization_level == 5
    assert (config.default_device_type, config.DLA_core) == ("DLA", 1)
    assert "GPU_FALLBACK" in config.flags
    assert cache.read_bytes() == b"4"  # one timing cache shared by the four graphs, then saved
    build(export_dir, tmp_path, precision="fp16", timing_cache=cache)
    assert trt.builds[-1]["config"].timing_cache.loaded == b"4" and cache.read_bytes() == b"8"


def test_build_errors_leave_nothing(export_dir, tmp_path, fake_gpu) -> None:
    with pytest.raises(ValueError, match="DLA runs fp16 and int8 only"):
        build(export_dir, tmp_path, precision="fp32", dla_core=0)
    with pytest.raises(ValueError, match="2 DLA cores"):
        build(export_dir, tmp_path, precision="fp16", dla_core=2)
    with pytest.raises(ManifestError, match="vidm-rt calibrate"):
        build(export_dir, tmp_path, precision="int8")
    engines = tmp_path / "engines"
    assert not engines.exists() or not any(engines.iterdir())


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here")
def test_cli_build_without_tensorrt(export_dir, tmp_path) -> None:
    out = tmp_path / "engines" / "x"
    result = CliRunner().invoke(main, ["build", str(export_dir), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "pip install 'vidm-rt[gpu]'" in result.output and "Traceback" not in result.output
    assert not out.exists()


# ---- TensorRT backend ----------------------------------------------------------------------


@pytest.mark.parametrize("options", [RuntimeOptions(), RuntimeOptions(cuda_graphs=False),
                                     RuntimeOptions(zero_copy=True)],
                         ids=["graphs", "eager", "zero-copy"])
def test_tensorrt_backend_equals_onnxruntime(export_dir, tmp_path, fake_gpu, options) -> None:
    cuda, _ = fake_gpu
    engines = build(export_dir, tmp_path, precision="fp32")
    assert all(b["config"].cleared == {"TF32"} for b in fake_gpu[1].builds)
    reference = video(VideoGenerator(export_dir))
    gen = VideoGenerator(engines, backend="tensorrt", device="cuda", options=options)
    allocations = cuda.calls.count("malloc") + cuda.calls.count("host_alloc")
    first = len(cuda.calls)
    frames = video(gen)
    np.testing.assert_allclose(frames, reference, rtol=0, atol=1e-5)
    calls = cuda.calls[first:]
    assert cuda.calls.count("malloc") + cuda.calls.count("host_alloc") == allocations
    captures = 1 if options.cuda_graphs else 0
    assert calls.count("capture_begin") == captures
    # Frame 1 warms up, frame 2 is captured and replayed, frame 3 replays.
    assert calls.count("graph_launch") == 2 * captures
    if options.zero_copy:
        assert "memcpy_htod" not in calls  # writes need no copy
        assert set(cuda.calls) >= {"host_alloc_mapped"} and "host_alloc" not in cuda.calls
    if options.cuda_graphs:
        last = calls[len(calls) - calls[::-1].index("capture_end"):]
        # After the capture a frame is: write k, write the noise address, replay, read.
        assert "execute_async_v3" not in last and "noise_kernel" not in last
        assert last.count("graph_launch") == 2
    # A second video with the same seed replays the motion capture (and captures the content
    # frame, on its second run) and gives the same frames; a third captures nothing new.
    np.testing.assert_array_equal(video(gen), frames)
    assert cuda.calls[first:].count("capture_begin") == 2 * captures
    np.testing.assert_array_equal(video(gen), frames)
    assert cuda.calls[first:].count("capture_begin") == 2 * captures


@pytest.mark.parametrize("version", ["10.3.0.30", "10.12.0.36"])
def test_int8_final_steps_build_and_run_on_their_own_engines(export_dir, tmp_path, monkeypatch,
                                                             version) -> None:
    """An int8 export whose denoisers run their last step on the FP32 graphs (the default
    layout of `vidm-rt calibrate`): the build makes a plan for each final-steps graph, and the
    backend launches it at the last step. The "int8" graphs here are copies of the FP32 ones, so
    the video must equal ONNX Runtime's FP32 video. A weakly typed build (10.3) sets FP16 with
    INT8 on the QDQ graphs (they are FP16 graphs with Q/DQ) and no flag on the FP32 ones."""
    trt = fake_tensorrt.install(monkeypatch, FakeCuda(), version)
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)
    manifest = load_manifest(export).to_dict()
    int8 = {}
    for graph, spec in manifest["graphs"].items():
        name = spec["file"].replace(".onnx", ".int8.onnx")
        shutil.copy(export / spec["file"], export / name)
        int8[graph] = {"file": name}
    int8["motion.final"] = {"file": "motion.onnx", "steps": 1}
    manifest["precisions"]["int8"] = int8
    manifest["files"] = sorted(set(manifest["files"]) | {s["file"] for s in int8.values()})
    write_manifest(export, manifest)
    engines = build(export, tmp_path, precision="int8")
    reduced = {"FP16", "INT8"} if version.startswith("10.3") else set()
    assert {Path(b["network"].source).name: b["config"].flags for b in trt.builds} == {
        "content.int8.onnx": reduced, "motion.int8.onnx": reduced, "flow.int8.onnx": reduced,
        "update.int8.onnx": reduced, "motion.onnx": set()}
    built = load_manifest(engines).graphs
    assert built["motion.final"].steps == 1 and built["motion.final"].precision == "fp32"
    assert built["motion.final"].source == "motion.onnx" and built["motion"].steps is None
    assert built["motion.final"].inputs == built["motion"].inputs
    gen = VideoGenerator(engines, backend="tensorrt", device="cuda")
    assert gen.final_steps == {"motion": 1}
    assert [d.graph for d, _ in gen.plan.steps["motion"]] == ["motion", "motion", "motion.final"]
    assert [d.graph for d, _ in gen.plan.steps["content"]] == ["content"] * 3
    np.testing.assert_allclose(video(gen), video(VideoGenerator(export_dir)), rtol=0, atol=1e-5)


def test_one_capture_serves_every_seed(export_dir, tmp_path, fake_gpu) -> None:
    """The seed is read from noise_base at replay: generating with another seed replays the
    captures of the first (one per denoiser graph) and still gives that seed's frames."""
    cuda, _ = fake_gpu
    engines = build(export_dir, tmp_path, precision="fp32")
    reference = VideoGenerator(export_dir)
    gen = VideoGenerator(engines, backend="tensorrt", device="cuda")
    first = len(cuda.calls)
    seeds = (5, 2**40 + 3)  # the second needs the key's high word
    for seed in (*seeds, *seeds):
        np.testing.assert_allclose(video(gen, seed=seed), video(reference, seed=seed),
                                   rtol=0, atol=1e-5)
    assert not np.array_equal(video(reference, seed=seeds[0]), video(reference, seed=seeds[1]))
    denoisers = len(gen.plan.steps)  # content and motion
    assert denoisers == 2 and cuda.calls[first:].count("capture_begin") == denoisers
    assert set(gen._programs) == {"content", "motion"}


def test_tensorrt_backend_refuses_foreign_engines(export_dir, tmp_path, fake_gpu) -> None:
    cuda, _ = fake_gpu
    engines = build(export_dir, tmp_path, precision="fp16")
    with pytest.raises(ValueError, match="holds fp16 engines"):
        VideoGenerator(engines, backend="tensorrt", device="cuda",
                       options=RuntimeOptions(precision="int8"))
    with pytest.raises(ManifestError, match="TensorRT engines run only with --backend tensorrt"):
        VideoGenerator(engines)
    with pytest.raises(ManifestError, match="vidm-rt build"):
        VideoGenerator(export_dir, backend="tensorrt", device="cuda")
    with pytest.raises(ValueError, match="runs on a GPU"):
        VideoGenerator(engines, backend="tensorrt", device="cpu")
    cuda.device_name = "Another GPU"
    with pytest.raises(ManifestError, match="on Another GPU .*vidm-rt build .* again"):
        VideoGenerator(engines, backend="tensorrt", device="cuda")


def test_cli_build_generate_and_bench_on_fakes(export_dir, tmp_path, fake_gpu) -> None:
    runner = CliRunner()
    out = tmp_path / "engines" / "tiny"
    result = runner.invoke(main, ["build", str(export_dir), "--precision", "fp32",
                                  "--out", str(out), "--timing-cache", str(tmp_path / "t.c")])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    result = runner.invoke(main, ["generate", "--engine", str(out), "--backend", "tensorrt",
                                  "--frames", "3", "--out", str(tmp_path / "v.npy")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "v.npy").shape == (3, 3, 32, 32)
    result = runner.invoke(main, [
        "bench", "--engine", str(export_dir), "--backends", "onnxruntime,tensorrt",
        "--trt-engine", str(out), "--frames", "3", "--repeats", "1", "--warmup", "0",
        "--reference-steps", "0", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert [(r["backend"], r["device"], r["cuda_graphs"]) for r in rows] == [
        ("onnxruntime", "cpu", False), ("tensorrt", "cuda", True)]
    assert json.loads((tmp_path / "b.json").read_text())["machine"]["gpu"] == "Fake GPU 8GB"
    result = runner.invoke(main, ["bench", "--engine", str(export_dir), "--backends",
                                  "tensorrt"])
    assert result.exit_code == 2 and "--trt-engine" in result.output


def test_tensorrt_path_never_imports_torch(export_dir, tmp_path, fake_gpu) -> None:
    engines = build(export_dir, tmp_path, precision="fp32")
    assert_runs_without_torch(f"""
        from tests.fake_gpu import FakeCuda
        from tests.fake_tensorrt import make_tensorrt
        from vidm_rt.runtime import VideoGenerator, cuda_memory
        cuda = FakeCuda()
        sys.modules["tensorrt"] = make_tensorrt(cuda)
        cuda_memory.open_device = lambda index=0: cuda
        gen = VideoGenerator({str(engines)!r}, backend="tensorrt", device="cuda")
        frames = list(gen.generate(3, seed=0))
        assert len(frames) == 3 and cuda.calls.count("graph_launch") == 1
    """)


def test_torch_backend_precision_errors(export_dir) -> None:
    with pytest.raises(ValueError, match="fp16 autocast needs --device cuda"):
        VideoGenerator(export_dir, backend="torch", options=RuntimeOptions(precision="fp16"))
    with pytest.raises(ValueError, match="int8 needs --backend tensorrt"):
        VideoGenerator(export_dir, backend="torch", options=RuntimeOptions(precision="int8"))


def test_noise_kernel_compile_and_launch_settings() -> None:
    from vidm_rt.runtime.device_noise import KERNEL_DIR, launch_config, nvrtc_options, status_code

    options = nvrtc_options("sm_87")
    assert b"--gpu-architecture=sm_87" in options and b"--fmad=false" in options
    assert f"--include-path={KERNEL_DIR}".encode() in options
    assert not any(b"fast-math" in o for o in options)
    for batch, per_video in [(1, 3 * 64 * 64), (3, 5), (2, 257)]:
        blocks, threads = launch_config(batch, per_video)
        philox_blocks = batch * -(-per_video // 4)
        assert blocks * threads >= philox_blocks > (blocks - 1) * threads
    assert status_code(0) == 0 and status_code(type("S", (), {"value": 3})()) == 3
