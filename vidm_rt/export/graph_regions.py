"""Regions of an exported denoiser graph, found from its structure (not the exporter's names).

Reduced-precision graphs keep some regions in FP32: the conditioning (nodes fed only by the
timestep / frame-index inputs and weights), the convolutions at the graph's ends and the
residual stream. Both export/fp16.py and export/int8.py choose from these.
"""

from __future__ import annotations

# Graph inputs that carry the conditioning (timestep, frame index).
CONDITIONING_INPUTS = frozenset({"t", "k"})
COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
# The ops an FP16 graph runs in FP16 (export/fp16.py): the attention's products are Einsums.
FP16_OPS = frozenset({*COMPUTE_OPS, "Einsum"})
NORM_OPS = frozenset({"InstanceNormalization", "LayerNormalization", "GroupNormalization"})


def conditioning_nodes(model, conditioning_inputs: frozenset[str] = CONDITIONING_INPUTS
                       ) -> set[str]:
    """Names of the nodes whose inputs derive only from `conditioning_inputs` and weights."""
    g = model.graph
    known = {i.name for i in g.initializer} | (
        set(conditioning_inputs) & {i.name for i in g.input})
    names = set()
    for node in g.node:
        if all(x in known for x in node.input if x):
            known.update(node.output)
            names.add(node.name)
    return names


def output_convs(model) -> set[str]:
    """The Conv nodes that write the graph outputs: reached backwards from each output
    through non-Conv nodes (for a denoiser, the last conv, which writes eps and v)."""
    g = model.graph
    producer = {y: n for n in g.node for y in n.output}
    found, stack, seen = set(), [o.name for o in g.output], set()
    while stack:
        t = stack.pop()
        node = producer.get(t)
        if node is None or t in seen:
            continue
        seen.add(t)
        if node.op_type == "Conv":
            found.add(node.name)
        else:
            stack.extend(x for x in node.input if x)
    return found


def input_convs(model) -> set[str]:
    """The Conv nodes that read an image input through cheap nodes only (e.g. the Concat of
    x_t and flow)."""
    g = model.graph
    raw = {i.name for i in g.input} - CONDITIONING_INPUTS
    for node in g.node:
        if node.op_type not in COMPUTE_OPS and any(x in raw for x in node.input):
            raw.update(node.output)
    return {n.name for n in g.node if n.op_type == "Conv" and n.input[0] in raw}


def residual_stream(model) -> set[str]:
    """The nodes that carry the image inputs to the output without a normalization between:
    the input convs, the residual adds, the skip concatenations and 1x1 skip convs, the
    down/upsampling of the skips. A block's own convs read normalized activations and are
    not in it; their outputs are added into it."""
    g = model.graph
    raw = {i.name for i in g.input} - CONDITIONING_INPUTS
    names = set()
    for node in g.node:
        if node.op_type not in NORM_OPS and any(x in raw for x in node.input if x):
            raw.update(node.output)
            names.add(node.name)
    return names
