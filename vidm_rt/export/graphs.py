"""The three network graphs of an export, as torch modules with ONNX-friendly signatures.

    content  (x_t (B,3,H,W), t (B,))                                   -> out (B,6,H,W)
    flow     (x_first (B,3,H,W), x_prev (B,3,H,W))                       -> flow (B,2,H,W)
    motion   (x_t, t, k, flow (B,2,H,W), x_first)                        -> out (B,6,H,W)

t and k are float32: the original timestep 0..999 and the frame index the PGN code uses.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from ..models import ContentModel, MotionModel


class ContentGraph(nn.Module):
    def __init__(self, model: ContentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x_t, t)


class FlowGraph(nn.Module):
    def __init__(self, model: MotionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_first: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        return self.model.compute_flow(x_first, x_prev)


class MotionGraph(nn.Module):
    def __init__(self, model: MotionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, k: torch.Tensor, flow: torch.Tensor,
                x_first: torch.Tensor) -> torch.Tensor:
        return self.model.denoise(x_t, t, k, flow, x_first)


INPUTS = {
    "content": ("x_t", "t"),
    "flow": ("x_first", "x_prev"),
    "motion": ("x_t", "t", "k", "flow", "x_first"),
}
OUTPUTS = {"content": ("out",), "flow": ("flow",), "motion": ("out",)}


def input_shapes(graph: str, batch: int, channels: int, h: int, w: int,
                 cond_channels: int = 2) -> dict[str, list[int]]:
    """`cond_channels`: of the flow stage's output (VIDMConfig.cond_channels)."""
    img = [batch, channels, h, w]
    shapes = {"x_t": img, "t": [batch], "k": [batch], "flow": [batch, cond_channels, h, w],
              "x_first": img, "x_prev": img}
    return {name: shapes[name] for name in INPUTS[graph]}


def example_inputs(graph: str, batch: int, channels: int, h: int, w: int,
                   generator: torch.Generator, cond_channels: int = 2) -> tuple[torch.Tensor, ...]:
    """Distinct random inputs (identical example tensors would be merged into one graph input)."""
    out = []
    for name, shape in input_shapes(graph, batch, channels, h, w, cond_channels).items():
        if name == "t":
            out.append(torch.randint(0, 1000, shape, generator=generator).float())
        elif name == "k":
            out.append(torch.randint(1, 16, shape, generator=generator).float())
        else:
            out.append(torch.rand(shape, generator=generator) * 2 - 1)
    return tuple(out)


def export_graph(module: nn.Module, graph: str, args: tuple[torch.Tensor, ...], path: Path,
                 opset: int) -> None:
    """torch.export-based ONNX export at static shapes, the weights in a file beside the graph
    (`embed_weights` moves them into it). Serialising a whole large model in memory holds several
    copies of its weights at once (3.7 GB more for the 777 MB paper model); writing them out
    holds none, and ONNX Runtime loads such a graph with one copy of them."""
    module = module.eval()
    # The exporter logs and warns about things that do not apply here (torchvision ops, opset
    # conversion notes); failures still raise.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, args, dynamo=True, opset_version=opset, input_names=list(INPUTS[graph]),
                output_names=list(OUTPUTS[graph]), verbose=False,
            )
            program.save(str(path), external_data=True)
            del program
    finally:
        logger.setLevel(level)


def _field(message: type, name: str, wire_type: int = 2) -> bytes:
    """The protobuf key of a field of an ONNX message (wire type 2: length-delimited)."""
    return _varint(message.DESCRIPTOR.fields_by_name[name].number << 3 | wire_type)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def embed_weights(path: Path) -> None:
    """Rewrite the ONNX file `path`, whose initializers are external data in files beside it,
    as one self-contained file, and remove those files. Only one tensor's bytes are in memory
    at a time: the file is written as its protobuf encoding field by field (a parser accepts
    fields in any order), each tensor with its raw_data appended from its external file."""
    import onnx
    from onnx import GraphProto, ModelProto, TensorProto
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)
    tensors = []   # (header without the data, data file, offset, length)
    inline = []
    for t in model.graph.initializer:
        if not uses_external_data(t):
            inline.append(t.SerializeToString())
            continue
        info = ExternalDataInfo(t)
        t.ClearField("external_data")
        t.ClearField("data_location")
        length = info.length or math.prod(t.dims) * tensor_dtype_to_np_dtype(t.data_type).itemsize
        tensors.append((t.SerializeToString(), path.parent / info.location, info.offset or 0,
                        length))
    files = {file for _, file, _, _ in tensors}
    model.graph.ClearField("initializer")
    graph_head = model.graph.SerializeToString()
    model.ClearField("graph")
    model_head = model.SerializeToString()
    init_key, raw_key = _field(GraphProto, "initializer"), _field(TensorProto, "raw_data")
    sizes = [len(h) + len(raw_key) + len(_varint(n)) + n for h, _, _, n in tensors]
    graph_size = len(graph_head) + sum(len(init_key) + len(_varint(len(b))) + len(b)
                                       for b in inline)
    graph_size += sum(len(init_key) + len(_varint(s)) + s for s in sizes)
    tmp = path.with_name(path.name + ".embedding")
    with tmp.open("wb") as out:
        out.write(model_head + _field(ModelProto, "graph") + _varint(graph_size) + graph_head)
        for b in inline:
            out.write(init_key + _varint(len(b)) + b)
        for (head, file, offset, n), size in zip(tensors, sizes, strict=True):
            with file.open("rb") as f:
                f.seek(offset)
                data = f.read(n)
            out.write(init_key + _varint(size) + head + raw_key + _varint(n) + data)
    tmp.replace(path)
    for file in files:
        file.unlink()
