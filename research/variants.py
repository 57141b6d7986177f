"""Graph variants the precision investigations compare: an FP32 graph with chosen nodes in FP16 or
reading INT8 inputs, and the relative eps error of a session. Used by the scripts in research/,
never by the package."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np


def cpu_session(model: str | bytes, threads: int | None, optimize: bool = True) -> Any:
    """An ONNX Runtime CPU session of a model file path or serialized model;
    `optimize=False` runs every node as written (no fusion, no graph rewrites)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def fp16_variant(model: Any, half_nodes: Collection[str] | None = None,
                 emulate: bool = True) -> bytes:
    """The FP32 onnx.ModelProto `model` converted by export/fp16.py (the nodes in `half_nodes` in
    FP16 instead of the export's choice), serialized; `emulate`: rounded as an FP16 engine
    rounds (vidm_rt/precision.py), else as ONNX Runtime runs the FP16 graph."""
    from vidm_rt.export.fp16 import convert_to_fp16
    from vidm_rt.precision import emulate_fp16

    fp16 = convert_to_fp16(model, half_nodes)
    return (emulate_fp16(fp16) if emulate else fp16).SerializeToString()


QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def quantized_nodes(int8: Any) -> list[str]:
    """The nodes of a QDQ onnx.ModelProto that read an input through a DequantizeLinear."""
    producer = {y: n for n in int8.graph.node for y in n.output}
    return [n.name for n in int8.graph.node if n.op_type not in QDQ_OPS
            and any(x in producer and producer[x].op_type == "DequantizeLinear"
                    for x in n.input)]


def int8_variant(fp32: Any, int8: Any, nodes: Collection[str], part: str = "both") -> bytes:
    """The FP32 onnx.ModelProto `fp32` with each of `nodes` reading its inputs as the INT8 QDQ
    graph `int8` (quantized from it: same node names) gives them, through Q/DQ: `part` "both",
    "activation" (the inputs an activation's Q/DQ pair rounds) or "weights" (the inputs
    dequantized from an INT8 initializer); serialized. Only these nodes see
    the rounding, not the other readers of the same tensors."""
    import onnx

    producer = {y: n for n in int8.graph.node for y in n.output}
    int8_nodes = {n.name: n for n in int8.graph.node}
    int8_inits = {i.name: i for i in int8.graph.initializer}
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    have = {i.name for i in model.graph.initializer}
    chains: dict[str, list[Any]] = {}
    for node in model.graph.node:
        if node.name not in nodes:
            continue
        quantized = int8_nodes[node.name]
        chain = chains.setdefault(node.name, [])
        for i, x in enumerate(quantized.input):
            dq = producer.get(x)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            if part != "both" and (dq.input[0] in int8_inits) != (part == "weights"):
                continue
            stack = [x]
            while stack:
                p = producer.get(stack.pop())
                if p is not None and p.op_type in QDQ_OPS and p not in chain:
                    chain.append(p)
                    stack += list(p.input)
            node.input[i] = x
        for p in chain:
            for x in p.input:
                if x in int8_inits and x not in have:
                    model.graph.initializer.append(int8_inits[x])
                    have.add(x)
    # A chain reads an FP32 activation that its node read, and INT8 initializers: it goes
    # right before its node.
    ordered = [q for n in model.graph.node for q in [*reversed(chains.get(n.name, [])), n]]
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model.SerializeToString()


def relative_eps_error(sess: Any, feeds: list[dict[str, np.ndarray]],
                       reference: np.ndarray) -> np.ndarray:
    """Per input of a denoiser session: RMS of the eps difference / RMS of
    FP32's eps (eps: the first half of the output channels)."""
    out = np.stack([sess.run(None, f)[0] for f in feeds])
    eps = out.shape[2] // 2
    diff = (out - reference)[:, :, :eps].astype(np.float64)
    ref = reference[:, :, :eps].astype(np.float64)
    return np.sqrt((diff ** 2).mean(axis=(1, 2, 3, 4)) / (ref ** 2).mean(axis=(1, 2, 3, 4)))
