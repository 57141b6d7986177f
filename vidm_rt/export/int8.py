"""INT8 QDQ graphs by ONNX Runtime static quantization over recorded denoiser inputs.

The output is explicit quantization (QuantizeLinear/DequantizeLinear pairs, symmetric INT8
activations, per-channel symmetric INT8 weights, float biases): ONNX Runtime's CPU EP fuses it
into integer kernels, and TensorRT builds an INT8 engine from the same file (no calibrator).

Node groups that can be kept in FP32 (`QuantOptions.exclude`), found from the graph's structure
so that they do not depend on the exporter's node names:
    io         the first convolutions (reading the graph inputs) and the last one (writing eps, v)
    pgn        the conditioning: the PGN MLPs and the timestep-embedding MLP, whose inputs
               derive only from (t, k) (export/graph_regions.py)
    attention  the attention projections (1-D convolutions around the Einsum/Softmax)
    stream     the convolutions of the residual stream: the input convs and the decoder's 1x1
               skip convs (export/graph_regions.py)
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .graph_regions import (
    COMPUTE_OPS,
    conditioning_nodes,
    input_convs,
    output_convs,
    residual_stream,
)

NODE_GROUPS = ("io", "pgn", "attention", "stream")


@dataclass(frozen=True)
class QuantOptions:
    # "stream": a quantized skip conv rounds x_t's path to the output to INT8 (teacher-forced
    # frames +5 dB on the bundled model, same speed on small; docs/precision.md).
    exclude: tuple[str, ...] = ("io", "pgn", "attention", "stream")
    op_types: tuple[str, ...] = COMPUTE_OPS
    per_channel: bool = True
    reduce_range: bool = False
    symmetric_activations: bool = True  # TensorRT's explicit quantization wants zero point 0
    activations: str = "int8"  # "uint8": ONNX Runtime's faster U8S8 CPU kernels; not TensorRT
    # "percentile": ranges that cover that share of the calibration values, which measured
    # better than "minmax" ranges (docs/precision.md); TensorRT takes either.
    calibrate_method: str = "percentile"
    percentile: float = 99.999
    moving_average: bool = False  # minmax: average the per-input ranges, not the extremes
    # Float biases: TensorRT's parser takes only 8-bit Q/DQ, and ONNX Runtime's CPU EP is as
    # fast with them as with INT32 biases (measured, bench/RESULTS.md).
    quantize_bias: bool = False
    # Q/DQ on the quantized products' outputs too, which rounds a conv's output for every
    # reader (residual add, next normalization): 40% of the INT8 step error on the bundled
    # model, but without it ONNX Runtime's CPU EP cannot fuse QLinearConv and runs slower than
    # FP32 (0.87x on small; docs/precision.md).
    quantize_outputs: bool = True
    # The last K sampler steps of each quantized denoiser run its FP32 graph. The last step's
    # eps reaches the video scaled by sigma/alpha with nothing after it to correct it: INT8
    # there leaves grain on the background, which raised FVD by 37 on the bundled model; FP32
    # in the last of 20 steps brings it back within FP32's spread (docs/precision.md).
    fp32_final_steps: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def node_groups(model) -> dict[str, set[str]]:
    """The node names of each group of NODE_GROUPS, among the graph's Conv/Gemm/MatMul nodes."""
    weights = {i.name: i for i in model.graph.initializer}
    compute = [n for n in model.graph.node if n.op_type in COMPUTE_OPS]
    attention = {n.name for n in compute if n.op_type == "Conv" and n.input[1] in weights
                 and len(weights[n.input[1]].dims) == 3}
    pgn = {n.name for n in compute} & conditioning_nodes(model)
    return {"io": input_convs(model) | output_convs(model), "pgn": pgn, "attention": attention,
            "stream": {n.name for n in compute} & residual_stream(model)}


# The calibrator keeps every intermediate tensor of the samples it has run until it reduces
# them to ranges or histograms: in chunks of at most this many samples the memory stays bounded
# (the small preset: 7.7 GB peak for 80 samples in one chunk).
CALIBRATION_CHUNK = 16


def calibration_chunk(count: int) -> int:
    """The largest chunk size <= CALIBRATION_CHUNK that divides `count` (quantize_static's
    strided calibration needs equal chunks); MinMax ranges merge exactly across chunks."""
    return max(d for d in range(1, min(count, CALIBRATION_CHUNK) + 1) if count % d == 0)


def quantize_graph(src: Path, dst: Path, samples: Sequence[dict[str, np.ndarray]],
                   options: QuantOptions, work_dir: Path) -> dict[str, int]:
    """Write the INT8 QDQ variant of the FP32 graph `src` to `dst`; returns per-group counts
    of the nodes kept in FP32. `work_dir` holds the calibrator's temporary files."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src))
    groups = node_groups(model)
    unknown = set(options.exclude) - set(NODE_GROUPS)
    if unknown:
        raise ValueError(f"unknown node group(s) {sorted(unknown)}: choose from {NODE_GROUPS}")
    excluded = sorted(set().union(*(groups[name] for name in options.exclude)))

    class Reader(CalibrationDataReader):
        """The samples, served in the chunks quantize_static asks for with set_range."""

        def __init__(self) -> None:
            self._it = iter(samples)

        def __len__(self) -> int:
            return len(samples)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(samples[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    activation_type = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[options.activations]
    method = {"minmax": CalibrationMethod.MinMax,
              "percentile": CalibrationMethod.Percentile}[options.calibrate_method]
    # The calibrator writes its augmented model next to the input model: keep it in work_dir.
    staged = work_dir / src.name
    onnx.save(model, str(staged))
    # Its advice to pre-process (symbolic shape inference) does not apply: the exporter's graphs
    # carry every shape already.
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    # The histogram calibrators print their progress to stdout, which is the CLI's output.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                staged, dst, Reader(), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(options.op_types), per_channel=options.per_channel,
                reduce_range=options.reduce_range, activation_type=activation_type,
                weight_type=QuantType.QInt8, nodes_to_exclude=excluded, calibrate_method=method,
                calibration_providers=["CPUExecutionProvider"],
                extra_options={"ActivationSymmetric": options.symmetric_activations,
                               "WeightSymmetric": True,
                               "CalibMovingAverage": options.moving_average,
                               "CalibPercentile": options.percentile,
                               "CalibStridedMinMax": calibration_chunk(len(samples)),
                               "QuantizeBias": options.quantize_bias,
                               "OpTypesToExcludeOutputQuantization":
                                   [] if options.quantize_outputs else list(options.op_types)},
            )
    finally:
        logger.setLevel(level)
    onnx.checker.check_model(str(dst))
    return {name: len(groups[name]) for name in options.exclude}


# FP16 scales on QuantizeLinear / DequantizeLinear (their float type follows the scale's) need
# opset 19.
FP16_QDQ_OPSET = 19


def fp16_qdq_graph(qdq, fp16):
    """The INT8 graph TensorRT builds (INT8 + FP16, as ModelOpt makes it): the FP32-typed QDQ
    graph `qdq` (quantize_graph's output, which ONNX Runtime's CPU EP runs) with every node in
    FP16 that runs in FP16 in the export's FP16 graph `fp16`, together with the Q/DQ pairs
    around those nodes (FP16 scales, opset 19). A strongly typed TensorRT build takes its types
    from the graph: from the FP32-typed QDQ graph it would run every unquantized layer in FP32.
    Nodes kept FP32 in the FP16 graph (normalizations, conditioning, residual stream, head) stay
    FP32 here too; Casts join the two, as in the FP16 graph."""
    import onnx
    from onnx import TensorProto

    from ..precision import weightless
    from .fp16 import convert_to_fp16
    from .graph_regions import FP16_OPS

    inferred = onnx.shape_inference.infer_shapes(weightless(fp16)).graph
    half_tensors = {v.name for v in inferred.value_info
                    if v.type.tensor_type.elem_type == TensorProto.FLOAT16}
    names = {n.name for n in qdq.graph.node}
    half = {n.name for n in fp16.graph.node
            if n.op_type in FP16_OPS and n.output[0] in half_tensors and n.name in names}
    producer = {y: n for n in qdq.graph.node for y in n.output}
    readers: dict[str, list] = {}
    for n in qdq.graph.node:
        for x in n.input:
            readers.setdefault(x, []).append(n)
    for node in [n for n in qdq.graph.node if n.name in half]:
        for x in node.input:  # DQ(weights) and Q -> DQ of the activations it reads
            dq = producer.get(x)
            if dq is not None and dq.op_type == "DequantizeLinear":
                half.add(dq.name)
                q = producer.get(dq.input[0])
                if q is not None and q.op_type == "QuantizeLinear":
                    half.add(q.name)
        for y in node.output:  # Q -> DQ of its output
            for q in readers.get(y, []):
                if q.op_type == "QuantizeLinear":
                    half.add(q.name)
                    half.update(r.name for r in readers.get(q.output[0], [])
                                if r.op_type == "DequantizeLinear")
    source = onnx.ModelProto()
    source.CopyFrom(qdq)
    for opset in source.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, FP16_QDQ_OPSET)
    return convert_to_fp16(source, half)


def write_fp16_qdq(qdq: Path, fp16: Path, dst: Path) -> str:
    """fp16_qdq_graph of the files `qdq` and `fp16`, written to `dst`; returns its name."""
    import onnx

    onnx.save(fp16_qdq_graph(onnx.load(str(qdq)), onnx.load(str(fp16))), str(dst))
    return dst.name
