"""The INT8 graphs TensorRT builds: the calibrated Q/DQ on the FP16-typed graph (INT8 + FP16),
while ONNX Runtime keeps running the FP32-typed QDQ graphs on the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from tests import fake_tensorrt
from tests.fake_gpu import FakeCuda
from vidm_rt.export.calibrate import TENSORRT_FILES, quantize_export, record_calibration
from vidm_rt.export.fp16 import convert_to_fp16
from vidm_rt.export.graph_regions import FP16_OPS
from vidm_rt.export.int8 import FP16_QDQ_OPSET, QuantOptions, fp16_qdq_graph, quantize_graph
from vidm_rt.manifest import load_manifest, precision_files, write_manifest
from vidm_rt.runtime import RuntimeOptions, VideoGenerator
from vidm_rt.testing.exports import build_tiny, video


def run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def output_types(model) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(model).graph
    return {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.output]}


@pytest.fixture(scope="module")
def graphs(export_dir, tmp_path_factory):
    """(fp32, fp16, FP32-typed QDQ) motion graph files and the inputs the QDQ was calibrated on."""
    tmp = tmp_path_factory.mktemp("int8-fp16")
    fp32 = export_dir / "motion.onnx"
    fp16 = tmp / "motion.fp16.onnx"
    onnx.save(convert_to_fp16(onnx.load(str(fp32))), str(fp16))
    rng = np.random.default_rng(0)
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in onnx.load(str(fp32)).graph.input}
    samples = [{n: rng.standard_normal(s).astype(np.float32) for n, s in inputs.items()}
               for _ in range(5)]
    for s in samples:
        s["t"], s["k"] = np.abs(s["t"]) * 300, np.abs(s["k"]) * 3
    qdq = tmp / "motion.int8.onnx"
    quantize_graph(fp32, qdq, samples[:4], QuantOptions(), tmp)
    return fp32, fp16, qdq, samples[4]


def test_qdq_on_the_fp16_graph_keeps_its_types_and_the_quantization(graphs) -> None:
    fp32, fp16, qdq, feeds = graphs
    half = fp16_qdq_graph(onnx.load(str(qdq)), onnx.load(str(fp16)))
    opset = max(o.version for o in half.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= FP16_QDQ_OPSET
    types, want = output_types(half), output_types(onnx.load(str(fp16)))
    compute = [n for n in half.graph.node if n.op_type in FP16_OPS]
    fp16_nodes = {n.name: want[n.output[0]] for n in onnx.load(str(fp16)).graph.node
                  if n.op_type in FP16_OPS}
    # Every product runs in the FP16 graph's type: FP16 where it is FP16 (47 of them here).
    assert {n.name: types[n.output[0]] for n in compute} == fp16_nodes
    assert list(fp16_nodes.values()).count(TensorProto.FLOAT16) > 10
    # Every quantized FP16 product reads FP16 Q/DQ (FP16 scales), with the same INT8 weights.
    producer = {y: n for n in half.graph.node for y in n.output}
    quantized = 0
    for node in compute:
        dqs = [producer[x] for x in node.input if x in producer
               and producer[x].op_type == "DequantizeLinear"]
        if fp16_nodes[node.name] == TensorProto.FLOAT16 and dqs:
            quantized += 1
            assert {types[d.output[0]] for d in dqs} == {TensorProto.FLOAT16}
    assert quantized > 10
    assert [i.type.tensor_type.elem_type for i in [*half.graph.input, *half.graph.output]] == [
        TensorProto.FLOAT] * (len(half.graph.input) + len(half.graph.output))
    # ONNX Runtime runs it too: it is the same quantized model, as far from FP32 as the
    # FP32-typed QDQ graph is (measured 0.0201 and 0.0203), and not FP32 (FP16 alone: 1.7e-4).
    path = qdq.parent / "motion.int8.fp16.onnx"
    onnx.save(half, str(path))
    reference = run(fp32, feeds)
    int8 = np.abs(run(qdq, feeds) - reference).max()
    int8_fp16 = np.abs(run(path, feeds) - reference).max()
    assert 10 * np.abs(run(fp16, feeds) - reference).max() < int8_fp16 < 1.5 * int8


def test_calibrate_writes_it_and_build_uses_it(export_dir, graphs, tmp_path, monkeypatch) -> None:
    """calibrate: ONNX Runtime's int8 graphs stay the FP32-typed QDQ ones; the denoiser with an
    FP16 graph also gets its INT8 + FP16 graph, which `vidm-rt build --precision int8` takes."""
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)
    shutil.copy(graphs[1], export / "motion.fp16.onnx")   # a real FP16 graph
    write_manifest(export, load_manifest(export, verify_hashes=False))
    record_calibration(export, tmp_path / "calib", videos=1, frames=2)
    quantize_export(export, tmp_path / "calib", QuantOptions(fp32_final_steps=0))
    manifest = load_manifest(export)
    assert manifest.quantization[TENSORRT_FILES] == {"motion": "motion.int8.fp16.onnx"}
    assert precision_files(manifest, "int8", export)["motion"] == "motion.int8.onnx"
    trt = fake_tensorrt.install(monkeypatch, FakeCuda())
    engines = build_tiny(export, tmp_path, precision="int8")
    sources = {Path(b["network"].source).name for b in trt.builds}
    assert sources == {"content.int8.onnx", "motion.int8.fp16.onnx", "flow.onnx", "update.onnx"}
    assert load_manifest(engines).graphs["motion"].source == "motion.int8.fp16.onnx"
    got = video(VideoGenerator(engines, backend="tensorrt", device="cuda"))
    cpu = video(VideoGenerator(export, options=RuntimeOptions(precision="int8")))
    # The content frame comes from the same graph on both; the motion frames from the two INT8
    # graphs, whose per-step agreement the test above measures (the random tiny model
    # amplifies any step difference over frames, so frames are only checked to be finite).
    np.testing.assert_allclose(got[:, 0], cpu[:, 0], rtol=0, atol=1e-5)
    assert np.isfinite(got).all()
