"""FP16 variants of the exported graphs: FP16 convolutions and matrix products, FP32 between.

A node runs in FP16 when it is a convolution or matrix product (Conv, Gemm, MatMul, Einsum: the
ops that FP16 speeds up, on tensor cores) outside these regions (export/graph_regions.py):
  - the conditioning: every node whose float inputs derive only from the timestep and
    frame-index inputs (t, k) and from weights. That is the content model's sinusoidal timestep
    embedding and its MLP, and the whole PGN code of the motion model,
  - the residual stream: the nodes that carry the image inputs (x_t, x_first, the flow) to the
    output without a normalization between. Its convs are the input convs and the 1x1 skip
    convs of the decoder (about 4% of the conv FLOPs of a denoiser). Near the end of sampling
    eps is a small difference of large terms that mostly come from x_t through this path: one
    rounding of it to FP16 (2^-11) is several times the error of all the other convs together
    (docs/precision.md). The flow network has no normalization, so it is all stream,
  - the output convolutions (in a denoiser the last conv, writing eps and v),
  - the last FP32_TAIL_CONVS convs before them in graph order (ExportOptions.fp16_fp32_tail):
    the decoder's last 3x3 convs at full resolution (with 3: both of its final ResBlock and the
    second of the one before). On the bundled model they were most of the FP16 error left
    after the rules above (per-step error 7.6e-5 -> 2.9e-5 without them); with them FP32, FP16
    stays >= 35 dB on all 24 sets of 16 videos measured (was 23). They are 17% / 6.5% of the
    conv FLOPs of the bundled / small motion model (docs/precision.md).
Every other node runs in FP32: normalizations and their statistics, softmax, activations,
residual adds, reshapes and concatenations. Each FP16 node reads Casts to FP16 of its inputs
(its weights are stored in FP16) and its output is cast back, so the error is that of rounding
the FP16 nodes' inputs, weights and outputs; rounding the elementwise chains between them too
(normalization affine, PGN modulation, SiLU) tripled the per-step error. Graph inputs and
outputs stay FP32, so the runtime's buffers are FP32 whatever the precision.

TensorRT runs it as a strongly typed network (on older 10.x, weakly typed with the FP32 layers
pinned, vidm_rt/build.py). ONNX Runtime's CPU EP has no FP16 Conv: it runs those nodes in FP32
and drops the Casts around them, so there the graph computes nearly FP32 (1e-7 from it on the
bundled model); vidm_rt/precision.py rewrites it to round every FP16 tensor, as an FP16
engine does, for measuring FP16 quality on the CPU.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import numpy as np

from ..precision import checked_model, weightless
from .graph_regions import FP16_OPS, conditioning_nodes, output_convs, residual_stream

# Ops whose output type is an attribute: never converted.
TYPED_SOURCE_OPS = frozenset({"Cast", "Constant", "ConstantOfShape"})
# Inputs of these ops that are not the data (Resize's roi and scales are always float32).
DATA_INPUTS = {"Resize": (0,)}
FP16_MAX = float(np.finfo(np.float16).max)
FP32_TAIL_CONVS = 3
def _float_tensors(model) -> set[str]:
    """Names of every FLOAT tensor of the graph, from ONNX shape inference."""
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(weightless(model))
    g = inferred.graph
    out = {i.name for i in g.initializer if i.data_type == TensorProto.FLOAT}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            out.add(vi.name)
    return out


def fp16_nodes(model, fp32_tail: int = FP32_TAIL_CONVS) -> set[str]:
    """Names of the nodes an FP16 graph runs in FP16 (see the module docstring), with the last
    `fp32_tail` of its convs in FP32."""
    fp32 = conditioning_nodes(model) | residual_stream(model) | output_convs(model)
    half = [n for n in model.graph.node if n.op_type in FP16_OPS and n.name not in fp32]
    convs = [n.name for n in half if n.op_type == "Conv"]
    tail = set(convs[len(convs) - fp32_tail:]) if fp32_tail else set()
    return {n.name for n in half} - tail


def convert_to_fp16(model, half_nodes: Collection[str] | None = None):
    """A new onnx.ModelProto: `model` with the nodes of `fp16_nodes(model)` in FP16, or those
    named in `half_nodes` (other tails, and the bench scripts' choices; Cast and Constant nodes
    stay as they are). `model` is left as it was."""
    from onnx import TensorProto, helper, numpy_helper

    # The nodes are rewired in place below: work on a copy of the graph without the weights,
    # which are read from `model` and copied once, into the result.
    source, work = model, weightless(model)
    half_nodes = fp16_nodes(source) if half_nodes is None else set(half_nodes)
    floats = _float_tensors(work)
    g = work.graph
    initializers = {i.name: i for i in source.graph.initializer}
    dtype = {name: TensorProto.FLOAT for name in floats}  # current type of each float tensor
    casts: dict[tuple[str, int], str] = {}
    fp16_weights: dict[str, str] = {}
    nodes = []

    def as_type(name: str, to: int) -> str:
        if dtype.get(name) == to:
            return name
        if name in initializers and to == TensorProto.FLOAT16:
            if name not in fp16_weights:
                fp16_weights[name] = f"{name}__fp16"
                dtype[fp16_weights[name]] = to
            return fp16_weights[name]
        key = (name, to)
        if key not in casts:
            casts[key] = f"{name}__to_{'fp16' if to == TensorProto.FLOAT16 else 'fp32'}"
            nodes.append(helper.make_node("Cast", [name], [casts[key]], to=to,
                                          name=f"{casts[key]}_cast"))
            dtype[casts[key]] = to
        return casts[key]

    for node in g.node:
        half = node.name in half_nodes and node.op_type not in TYPED_SOURCE_OPS
        to = TensorProto.FLOAT16 if half else TensorProto.FLOAT
        data = DATA_INPUTS.get(node.op_type, range(len(node.input)))
        for i, x in enumerate(node.input):
            if x in floats and i in data:
                node.input[i] = as_type(x, to)
        nodes.append(node)
        for y in node.output:
            if y in floats and node.op_type not in TYPED_SOURCE_OPS:
                dtype[y] = to

    # Graph outputs stay FP32: the producer writes an internal name, a Cast the public one.
    for out in g.output:
        if dtype.get(out.name) == TensorProto.FLOAT16:
            inner = f"{out.name}__fp16"
            for node in nodes:
                node.output[:] = [inner if y == out.name else y for y in node.output]
                node.input[:] = [inner if x == out.name else x for x in node.input]
            nodes.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT,
                                          name=f"{out.name}_cast_fp32"))

    used = {x for node in nodes for x in node.input}

    def weights() -> Iterator:
        yield from (i for i in source.graph.initializer if i.name in used)
        for name, half_name in fp16_weights.items():  # made one at a time, as they are stored
            arr = numpy_helper.to_array(initializers[name])
            half = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
            yield numpy_helper.from_array(half, half_name)

    return checked_model(source, g.name, nodes, list(source.graph.input), list(g.output),
                         weights(), "vidm-rt fp16")
