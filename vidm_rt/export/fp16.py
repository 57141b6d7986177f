"""FP16 variants of the exported graphs, with the overflow-prone parts kept in FP32.

A node runs in FP32 when it is
  - a normalisation (InstanceNormalization: the exporter's GroupNorm is Reshape ->
    InstanceNormalization -> Reshape -> affine, so the statistics are the InstanceNormalization),
  - a softmax,
  - part of the conditioning: every node whose float inputs derive only from the timestep and
    frame-index inputs (t, k) and from weights. That is the content model's sinusoidal timestep
    embedding and its MLP, and the whole PGN code of the motion model: the sine features and the
    MLP that turns them into gamma/beta,
  - an output convolution (in a denoiser the last conv, writing eps and v): rounding only its
    weights to FP16 moves the shapes of one of 16 content frames (33.6 dB pooled), while
    rounding all the content model's other weights leaves the frames at 47.2 dB (measured by
    bench/precision_sensitivity.py, bench/RESULTS.md); it is one 3x3 conv to 2C channels,
  - an op whose output type is an attribute (Cast, Constant, ConstantOfShape).
Every other node runs in FP16; Casts are inserted where the two regions meet. Graph inputs and
outputs stay FP32, so the runtime's buffers are FP32 whatever the precision.

TensorRT runs it as a strongly typed network. ONNX Runtime's CPU EP has few FP16 kernels: it
runs the missing ones in FP32 and drops most of the rounding between them, so there the graph
computes something between FP32 and FP16; export/fp16_emulation.py rewrites it to round every
FP16 tensor, as an FP16 engine does, for measuring FP16 quality on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph_regions import CONDITIONING_INPUTS, conditioning_nodes, output_convs

KEEP_FP32_OPS = frozenset({"InstanceNormalization", "LayerNormalization", "GroupNormalization",
                           "Softmax"})
TYPED_SOURCE_OPS = frozenset({"Cast", "Constant", "ConstantOfShape"})
# Inputs of these ops that are not the data (Resize's roi and scales are always float32).
DATA_INPUTS = {"Resize": (0,)}
FP16_MAX = float(np.finfo(np.float16).max)


def _float_tensors(model) -> set[str]:
    """Names of every FLOAT tensor of the graph, from ONNX shape inference."""
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {i.name for i in g.initializer if i.data_type == TensorProto.FLOAT}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            out.add(vi.name)
    return out


def convert_to_fp16(model, conditioning_inputs: frozenset[str] = CONDITIONING_INPUTS,
                    keep_nodes: frozenset[str] = frozenset()):
    """A new onnx.ModelProto: `model` with its data path in FP16 (see the module docstring);
    the nodes named in `keep_nodes` stay FP32 too. `model` is left as it was."""
    from onnx import ModelProto, TensorProto, helper, numpy_helper

    # The nodes are rewired in place below: work on a copy.
    source, model = model, ModelProto()
    model.CopyFrom(source)
    floats = _float_tensors(model)
    g = model.graph
    initializers = {i.name: i for i in g.initializer}
    fp32_nodes = (conditioning_nodes(model, conditioning_inputs) | output_convs(model)
                  | set(keep_nodes))
    dtype = {name: TensorProto.FLOAT for name in floats}  # current type of each float tensor
    casts: dict[tuple[str, int], str] = {}
    fp16_weights: dict[str, str] = {}
    new_inits, nodes = [], []

    def as_type(name: str, to: int) -> str:
        if dtype.get(name) == to:
            return name
        if name in initializers and to == TensorProto.FLOAT16:
            if name not in fp16_weights:
                arr = numpy_helper.to_array(initializers[name])
                half = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
                fp16_weights[name] = f"{name}__fp16"
                new_inits.append(numpy_helper.from_array(half, fp16_weights[name]))
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
        data = DATA_INPUTS.get(node.op_type, range(len(node.input)))
        float_inputs = [x for i, x in enumerate(node.input) if x and i in data and x in floats]
        keep = (node.name in fp32_nodes or node.op_type in KEEP_FP32_OPS
                or node.op_type in TYPED_SOURCE_OPS)
        to = TensorProto.FLOAT if keep else TensorProto.FLOAT16
        for i, x in enumerate(node.input):
            if x in float_inputs:
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
    graph = helper.make_graph(
        nodes, g.name, list(g.input), list(g.output),
        [i for i in [*g.initializer, *new_inits] if i.name in used],
    )
    return checked_model(graph, model, "vidm-rt fp16")


def checked_model(graph, source, producer: str):
    """An onnx.ModelProto of `graph` with the opsets and IR version of the model `source`,
    shape-inferred and passed by the full ONNX checker (raises if not)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=list(source.opset_import),
                              producer_name=producer)
    model.ir_version = source.ir_version
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_fp16_graph(src: Path, dst: Path) -> None:
    """Convert the FP32 graph file `src` into the FP16 graph file `dst`."""
    import onnx

    model = onnx.load(str(src))
    onnx.save(convert_to_fp16(model), str(dst))
