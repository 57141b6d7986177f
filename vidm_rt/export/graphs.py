"""The three network graphs of an export, as torch modules with ONNX-friendly signatures.

    content  (x_t (B,3,H,W), t (B,))                                   -> out (B,6,H,W)
    flow     (x_first (B,3,H,W), x_prev (B,3,H,W))                       -> flow (B,2,H,W)
    motion   (x_t, t, k, flow (B,2,H,W), x_first)                        -> out (B,6,H,W)

t and k are float32: the original timestep 0..999 and the frame index the PGN code uses.
"""

from __future__ import annotations

import logging
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


def input_shapes(graph: str, batch: int, channels: int, h: int, w: int) -> dict[str, list[int]]:
    img = [batch, channels, h, w]
    shapes = {"x_t": img, "t": [batch], "k": [batch], "flow": [batch, 2, h, w],
              "x_first": img, "x_prev": img}
    return {name: shapes[name] for name in INPUTS[graph]}


def example_inputs(graph: str, batch: int, channels: int, h: int, w: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Distinct random inputs (identical example tensors would be merged into one graph input)."""
    out = []
    for name, shape in input_shapes(graph, batch, channels, h, w).items():
        if name == "t":
            out.append(torch.randint(0, 1000, shape, generator=generator).float())
        elif name == "k":
            out.append(torch.randint(1, 16, shape, generator=generator).float())
        else:
            out.append(torch.rand(shape, generator=generator) * 2 - 1)
    return tuple(out)


def export_graph(module: nn.Module, graph: str, args: tuple[torch.Tensor, ...], path: Path,
                 opset: int) -> None:
    """torch.export-based ONNX export at static shapes, weights embedded in the file."""
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
                output_names=list(OUTPUTS[graph]), verbose=False, external_data=False,
            )
            program.save(str(path))
    finally:
        logger.setLevel(level)
