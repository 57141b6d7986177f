"""FP16 graphs as an FP16 engine computes them, for ONNX Runtime's CPU EP (onnx only).

Shared by the export stage, which checks its FP16 graphs this way, and by the runtime, which
runs them this way on request (RuntimeOptions.emulate_fp16); both also use the ONNX model
helpers below (`weightless`, `checked_model`).

The CPU EP has no FP16 kernel for most ops (Conv, Add, Mul, Sigmoid, ...). It runs such a node
in FP32 between inserted Casts, and then drops the Cast pairs it inserted, our own Casts into
the FP16 region included where they meet one of its own. So most FP16 tensors of an FP16 graph
are never rounded to FP16 there (in the graphs of vidm_rt/export/fp16.py, whose FP16 nodes are
convolutions and products, none are; the earlier graphs had only the inputs of their FP16
Reshape and Concat nodes rounded). Measured against FP32 that is an FP16 engine with its
rounding left out (docs/precision.md).

`emulate_fp16` rewrites an FP16 graph into an FP32 one that rounds where an FP16 engine rounds:
every FP16 tensor of the original is computed in FP32 and passed through Cast(FP16) ->
Cast(FP32), which ONNX Runtime keeps (a pair it did not insert is a real rounding). FP16
initializers become their exact FP32 values. Ops that only move data (Reshape, Concat, ...)
are not rounded again: their inputs already are. This is what an engine computes when each op
rounds its FP32 result to FP16 (TensorRT's FP16 convolutions accumulate in FP32); an engine that
fuses ops keeps some intermediates in FP32 and rounds less, so the emulation errs, if at all,
on the side of more FP16 error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# Ops whose FP16 outputs are their inputs' values rearranged: nothing new to round.
DATA_MOVEMENT_OPS = frozenset({"Reshape", "Concat", "Split", "Unsqueeze", "Squeeze", "Transpose",
                               "Slice", "Identity", "Flatten", "Gather", "Expand"})


def emulate_fp16(model: Any) -> Any:
    """A new onnx.ModelProto: the FP16 graph `model` in FP32 arithmetic with every FP16 tensor
    rounded to FP16 (see the module docstring). Inputs, outputs and node names are unchanged."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # Nodes from the inferred copy (they are rewired below), weights from `model`.
    inferred = onnx.shape_inference.infer_shapes(weightless(model), strict_mode=True)
    g = inferred.graph
    dtype = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
    dtype |= {i.name: i.data_type for i in g.initializer}

    def weights() -> Iterator:
        """The weights in FP32, each FP16 one converted as it is stored (one at a time)."""
        for init in model.graph.initializer:
            if init.data_type == TensorProto.FLOAT16:
                exact = numpy_helper.to_array(init).astype("float32")
                init = numpy_helper.from_array(exact, init.name)
            yield init

    nodes = []
    for node in g.node:
        if node.op_type == "Cast":
            src = dtype.get(node.input[0])
            to = next(a.i for a in node.attribute if a.name == "to")
            if to == TensorProto.FLOAT16 and src == TensorProto.FLOAT:
                nodes += _rounding(node.input[0], node.output[0], node.name)
                continue
            if to == TensorProto.FLOAT and src == TensorProto.FLOAT16:
                nodes.append(helper.make_node("Identity", list(node.input), list(node.output),
                                              name=node.name))
                continue
        fp16_outputs = [y for y in node.output if dtype.get(y) == TensorProto.FLOAT16]
        if not fp16_outputs or node.op_type in DATA_MOVEMENT_OPS:
            nodes.append(node)
            continue
        raw = {y: f"{y}__fp32" for y in fp16_outputs}
        node.output[:] = [raw.get(y, y) for y in node.output]
        nodes.append(node)
        for y in fp16_outputs:
            nodes += _rounding(raw[y], y, f"{node.name}__round_{y}")

    return checked_model(model, g.name, nodes, list(model.graph.input),
                         list(model.graph.output), weights(), "vidm-rt fp16 emulation")


def _rounding(src: str, dst: str, name: str) -> list[Any]:
    """Cast(FP16) -> Cast(FP32) from `src` to `dst`: `src` rounded to the nearest FP16 value."""
    from onnx import TensorProto, helper

    half = f"{dst}__half"
    return [helper.make_node("Cast", [src], [half], to=TensorProto.FLOAT16, name=f"{name}_to16"),
            helper.make_node("Cast", [half], [dst], to=TensorProto.FLOAT, name=f"{name}_to32")]


# Initializers larger than this are left out of the copies that shape inference and the checker
# make (weightless); smaller ones (shapes, axes, scales) keep their values, which inference reads.
WEIGHTLESS_BYTES = 4096


def weightless(model):
    """A copy of `model` for shape inference and the checker, without the weights' bytes: each
    initializer over WEIGHTLESS_BYTES becomes a graph input of its name, type and dims. Both
    serialize the whole model (several copies of a large model's weights at once); this way
    they copy only its graph."""
    from onnx import ModelProto, helper

    g = model.graph
    inputs, kept = list(g.input), []
    for init in g.initializer:
        if len(init.raw_data) > WEIGHTLESS_BYTES:
            inputs.append(helper.make_tensor_value_info(init.name, init.data_type, init.dims))
        else:
            kept.append(init)
    out = ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                     producer_name=model.producer_name)
    out.graph.CopyFrom(helper.make_graph(list(g.node), g.name, inputs, list(g.output), kept,
                                         value_info=list(g.value_info)))
    return out


def checked_model(source, name: str, nodes: list, inputs: list, outputs: list,
                  initializers: Iterable, producer: str):
    """An onnx.ModelProto of these nodes, inputs, outputs and initializers with the opsets and
    IR version of the model `source`, shape-inferred and passed by the full ONNX checker
    (raises if not). Each initializer is copied once, as `initializers` yields it."""
    import onnx
    from onnx import ModelProto

    model = ModelProto(ir_version=source.ir_version, opset_import=source.opset_import,
                       producer_name=producer)
    g = model.graph
    g.name = name
    g.node.extend(nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    for init in initializers:
        g.initializer.add().CopyFrom(init)
    inferred = onnx.shape_inference.infer_shapes(weightless(model), strict_mode=True)
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)
    onnx.checker.check_model(weightless(model), full_check=True)
    return model

