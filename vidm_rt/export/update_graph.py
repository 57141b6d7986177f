"""The sampler-update graph: one step of `vidm_rt.schedule.apply_update` as ONNX (FP32 always).

    inputs   x (B,C,H,W), model_out (B,2C,H,W), coef (7,), noise (B,C,H,W), x0_prev (B,C,H,W)
    outputs  x_next (B,C,H,W), x0 (B,C,H,W)

    coef = [r, m, a, b, c, s, h]  (one row of SamplerTable.coefficients())
    x0     = clip(r*x - m*eps, -1, 1)                       (no clip when the table says so)
    x_next = ((a*x0 + b*x) + c*x0_prev) + (s*exp(h*v))*noise

The evaluation order is fixed (and the same in numpy and the C++ runtime) so that float32
results agree. The graph is built node by node: it needs onnx, not torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..schedule import COEFFICIENT_NAMES

UPDATE_INPUTS = ("x", "model_out", "coef", "noise", "x0_prev")
UPDATE_OUTPUTS = ("x_next", "x0")


def build_update_graph(batch: int, channels: int, height: int, width: int, clip_x0: bool,
                       opset: int):
    """An onnx.ModelProto for the generic sampler update at these static shapes."""
    import onnx
    from onnx import TensorProto, helper

    img = [batch, channels, height, width]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, img),
        helper.make_tensor_value_info("model_out", TensorProto.FLOAT,
                                      [batch, 2 * channels, height, width]),
        helper.make_tensor_value_info("coef", TensorProto.FLOAT, [len(COEFFICIENT_NAMES)]),
        helper.make_tensor_value_info("noise", TensorProto.FLOAT, img),
        helper.make_tensor_value_info("x0_prev", TensorProto.FLOAT, img),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, img) for n in UPDATE_OUTPUTS]

    def const(name: str, values: list, dtype=np.int64) -> onnx.TensorProto:
        return onnx.numpy_helper.from_array(np.array(values, dtype=dtype), name)

    initializers = [
        const("eps_start", [0]), const("eps_end", [channels]),
        const("v_start", [channels]), const("v_end", [2 * channels]), const("axis1", [1]),
        const("split7", [1] * len(COEFFICIENT_NAMES)),
        const("lo", -1.0, np.float32), const("hi", 1.0, np.float32),
    ]
    # Split outputs follow the coefficient column order: r, m, a, b, c, s, h.
    r, m, a, b, c, s, h = COEFFICIENT_NAMES
    x0_raw = "x0_raw" if clip_x0 else "x0"
    nodes = [
        helper.make_node("Slice", ["model_out", "eps_start", "eps_end", "axis1"], ["eps"]),
        helper.make_node("Slice", ["model_out", "v_start", "v_end", "axis1"], ["v"]),
        helper.make_node("Split", ["coef", "split7"], [r, m, a, b, c, s, h], axis=0),
        helper.make_node("Mul", [r, "x"], ["rx"]),
        helper.make_node("Mul", [m, "eps"], ["meps"]),
        helper.make_node("Sub", ["rx", "meps"], [x0_raw]),
    ]
    if clip_x0:
        nodes.append(helper.make_node("Clip", ["x0_raw", "lo", "hi"], ["x0"]))
    nodes += [
        helper.make_node("Mul", [a, "x0"], ["ax0"]),
        helper.make_node("Mul", [b, "x"], ["bx"]),
        helper.make_node("Add", ["ax0", "bx"], ["mean_ab"]),
        helper.make_node("Mul", [c, "x0_prev"], ["cprev"]),
        helper.make_node("Add", ["mean_ab", "cprev"], ["mean"]),
        helper.make_node("Mul", [h, "v"], ["hv"]),
        helper.make_node("Exp", ["hv"], ["exp_hv"]),
        helper.make_node("Mul", [s, "exp_hv"], ["std"]),
        helper.make_node("Mul", ["std", "noise"], ["scaled_noise"]),
        helper.make_node("Add", ["mean", "scaled_noise"], ["x_next"]),
    ]
    graph = helper.make_graph(nodes, "vidm_rt_sampler_update", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="vidm-rt")
    onnx.checker.check_model(model)
    return model


def write_update_graph(path: Path, batch: int, channels: int, height: int, width: int,
                       clip_x0: bool, opset: int) -> None:
    import onnx

    onnx.save(build_update_graph(batch, channels, height, width, clip_x0, opset), str(path))
