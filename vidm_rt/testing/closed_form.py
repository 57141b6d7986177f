"""Engine directories whose denoisers are closed forms, for checking runtimes against each other.

The content, flow and motion graphs are tiny ONNX graphs computing fixed float32 formulas of their
inputs (no weights), the update graph is the real one (`vidm_rt.export.update_graph`), and the
manifest is a normal export manifest marked ``"closed_form": {"version": 1}``. ONNX Runtime runs
such a directory like any export (the Python `VideoGenerator`), while the C++ library recognises
the mark and evaluates the same formulas natively (cpp/src/closed_form_engine.h), so the two
can be compared frame by frame on a machine without a GPU. Formulas, in evaluation order::

    s = t * 0.001,  q = k * 0.01                      (per video)
    content: eps = 0.8*x_t + 0.1*s                     v = 0.3*x_t - 0.2*s
    flow:    flow[j] = 0.5 * (x_prev - x_first)[j]     for channels j = 0, 1
    motion:  g = flow[0] + flow[1]
             eps = ((0.7*x_t + 0.2*x_first) + 0.3*g) + s*q      v = 0.25*x_t - 0.5*s

out = concat(eps, v) along channels. Needs onnx (the `torch` extra), not torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..manifest import write_manifest
from ..schedule import sampler_table

CLOSED_FORM_VERSION = 1


def _graph(name: str, inputs: dict[str, list[int]], out_name: str, out_shape: list[int],
           nodes: list[Any], consts: dict[str, Any], opset: int) -> Any:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    used = {i for node in nodes for i in node.input}
    initializers = [
        numpy_helper.from_array(np.asarray(v, np.int64 if isinstance(v, list) else np.float32), k)
        for k, v in consts.items() if k in used
    ]
    graph = helper.make_graph(
        nodes, f"vidm_rt_closed_form_{name}",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="vidm-rt")
    onnx.checker.check_model(model)
    return model


def closed_form_graphs(batch: int, channels: int, height: int, width: int,
                       opset: int = 18) -> dict[str, Any]:
    """{"content" | "flow" | "motion": onnx.ModelProto} of the module docstring's formulas."""
    from onnx import helper

    n = helper.make_node
    img = [batch, channels, height, width]
    out = [batch, 2 * channels, height, width]
    flow = [batch, 2, height, width]
    per_video = [batch, 1, 1, 1]
    consts = {"c0.001": 0.001, "c0.01": 0.01, "c0.1": 0.1, "c0.2": 0.2, "c0.25": 0.25,
              "c0.3": 0.3, "c0.5": 0.5, "c0.7": 0.7, "c0.8": 0.8,
              "per_video": per_video, "ch0": [0], "ch1": [1], "ch2": [2], "axis1": [1]}
    s_nodes = [n("Reshape", ["t", "per_video"], ["t4"]), n("Mul", ["t4", "c0.001"], ["s"])]
    content = _graph("content", {"x_t": img, "t": [batch]}, "out", out, s_nodes + [
        n("Mul", ["x_t", "c0.8"], ["ax"]), n("Mul", ["s", "c0.1"], ["bs"]),
        n("Add", ["ax", "bs"], ["eps"]),
        n("Mul", ["x_t", "c0.3"], ["cx"]), n("Mul", ["s", "c0.2"], ["ds"]),
        n("Sub", ["cx", "ds"], ["v"]),
        n("Concat", ["eps", "v"], ["out"], axis=1),
    ], consts, opset)
    flow_graph = _graph("flow", {"x_first": img, "x_prev": img}, "flow", flow, [
        n("Sub", ["x_prev", "x_first"], ["d"]),
        n("Slice", ["d", "ch0", "ch2", "axis1"], ["d2"]),
        n("Mul", ["d2", "c0.5"], ["flow"]),
    ], consts, opset)
    motion = _graph(
        "motion", {"x_t": img, "t": [batch], "k": [batch], "flow": flow, "x_first": img},
        "out", out, s_nodes + [
            n("Reshape", ["k", "per_video"], ["k4"]), n("Mul", ["k4", "c0.01"], ["q"]),
            n("Slice", ["flow", "ch0", "ch1", "axis1"], ["f0"]),
            n("Slice", ["flow", "ch1", "ch2", "axis1"], ["f1"]),
            n("Add", ["f0", "f1"], ["g"]),
            n("Mul", ["x_t", "c0.7"], ["ax"]), n("Mul", ["x_first", "c0.2"], ["bf"]),
            n("Add", ["ax", "bf"], ["axbf"]), n("Mul", ["g", "c0.3"], ["cg"]),
            n("Add", ["axbf", "cg"], ["abg"]), n("Mul", ["s", "q"], ["sq"]),
            n("Add", ["abg", "sq"], ["eps"]),
            n("Mul", ["x_t", "c0.25"], ["vx"]), n("Mul", ["s", "c0.5"], ["vs"]),
            n("Sub", ["vx", "vs"], ["v"]),
            n("Concat", ["eps", "v"], ["out"], axis=1),
        ], consts, opset)
    return {"content": content, "flow": flow_graph, "motion": motion}


def write_closed_form_engine(
    directory: str | Path,
    *,
    batch: int = 2,
    channels: int = 3,
    height: int = 8,
    width: int = 8,
    sampler: str = "ancestral",
    steps: int = 5,
    eta: float = 0.0,
    spacing: str | None = None,
    frames: int = 4,
    train_frames: int = 8,
    frame_index: str = "clamp",
    content: bool = True,
    opset: int = 18,
) -> Path:
    """Write a closed-form engine directory (graphs + update graph + manifest); returns it."""
    import onnx

    from ..export.update_graph import UPDATE_INPUTS, UPDATE_OUTPUTS, write_update_graph
    from ..schedule import COEFFICIENT_NAMES

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = sampler_table(sampler, steps, eta=eta, spacing=spacing)
    img = [batch, channels, height, width]
    shapes = {"x_t": img, "t": [batch], "k": [batch], "flow": [batch, 2, height, width],
              "x_first": img, "x_prev": img}
    graphs: dict[str, Any] = {}
    for name, model in closed_form_graphs(batch, channels, height, width, opset).items():
        if name == "content" and not content:
            continue
        onnx.save(model, str(directory / f"{name}.onnx"))
        inputs = [i.name for i in model.graph.input]
        out = model.graph.output[0]
        graphs[name] = {
            "file": f"{name}.onnx",
            "inputs": {i: {"shape": shapes[i], "dtype": "float32"} for i in inputs},
            "outputs": {out.name: {"shape": [d.dim_value for d in
                                             out.type.tensor_type.shape.dim],
                                   "dtype": "float32"}},
        }
    write_update_graph(directory / "update.onnx", batch, channels, height, width, table.clip_x0,
                       opset)
    upd_shapes = {"x": img, "model_out": [batch, 2 * channels, height, width],
                  "coef": [len(COEFFICIENT_NAMES)], "noise": img, "x0_prev": img}
    graphs["update"] = {
        "file": "update.onnx",
        "inputs": {n: {"shape": upd_shapes[n], "dtype": "float32"} for n in UPDATE_INPUTS},
        "outputs": {n: {"shape": img, "dtype": "float32"} for n in UPDATE_OUTPUTS},
    }
    write_manifest(directory, {
        "kind": "onnx",
        "name": f"closed-form-{sampler}",
        "closed_form": {"version": CLOSED_FORM_VERSION},
        "config": {"name": "closed-form", "image_channels": channels,
                   "train_frames": train_frames},
        "batch": batch, "height": height, "width": width, "frames": frames,
        "frame_index": frame_index,
        "sampler": table.to_dict(),
        "graphs": graphs,
        "files": [g["file"] for g in graphs.values()],
        "versions": {"vidm_rt": __version__, "onnx": onnx.__version__, "onnx_opset": opset},
    })
    return directory


def closed_form_frames(engine_dir: str | Path, frames: int, seed: int, first_video: int = 0,
                       first_frame: np.ndarray | None = None) -> np.ndarray:
    """(frames, B, C, H, W) float32 from the Python runtime (ONNX Runtime, CPU) on engine_dir."""
    from ..runtime import VideoGenerator

    with VideoGenerator(engine_dir, backend="onnxruntime", threads=1) as gen:
        return np.stack(list(gen.generate(frames, seed=seed, first_video=first_video,
                                          first_frame=first_frame)))
