"""Memory of a generator per export: weights, activations (an ESTIMATE) and video buffers.

    python bench/memory_table.py export/tiny export/small ... [--json bench/results/X.json]

For every network graph of each export directory (and its FP16 variant) ONNX shape inference
gives every intermediate tensor's size. Two activation figures per graph:

    sum    every intermediate tensor at once (no reuse at all: an upper bound)
    peak   the most bytes live at one time when the nodes run in the graph's order, a tensor
           living from its producer to its last consumer (what a memory planner that reuses
           freed tensors, as TensorRT's does, needs at the least before its own scratch)

They are estimates until a GPU measures TensorRT's device_memory_size_v2. The TensorRT
backend gives all graphs one activation buffer (runtime/tensorrt_backend.py), so a video needs
the largest graph's. Video buffers are the schedule's buffers (runtime/plan.py) plus their
pinned host staging. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vidm_rt.manifest import Manifest, load_manifest
from vidm_rt.runtime.bindings import device_nbytes
from vidm_rt.runtime.plan import build_plan

MB = 2**20


def graph_memory(path: Path) -> dict[str, float]:
    """Weights and activation estimates (MiB) of one ONNX graph, from shape inference."""
    import onnx
    from onnx import helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    weights = {t.name: math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in g.initializer}
    sizes = {}
    for v in [*g.value_info, *g.output]:
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            itemsize = helper.tensor_dtype_to_np_dtype(t.elem_type).itemsize
            sizes[v.name] = math.prod(d.dim_value for d in t.shape.dim) * itemsize
    for node in g.node:  # constants computed inside the graph count as weights
        if node.op_type == "Constant":
            for name in node.output:
                weights[name] = sizes.pop(name, 0)
    last_use = {}
    for i, node in enumerate(g.node):
        for name in node.input:
            last_use[name] = i
    outputs = {o.name for o in g.output}
    live, peak = 0, 0
    for i, node in enumerate(g.node):
        live += sum(sizes.get(name, 0) for name in node.output)
        peak = max(peak, live)
        for name in {*node.input, *node.output}:
            if name in sizes and last_use.get(name, -1) <= i and name not in outputs:
                live -= sizes[name]
    return {"weights_mb": sum(weights.values()) / MB, "act_sum_mb": sum(sizes.values()) / MB,
            "act_peak_mb": peak / MB}


def video_buffers_mb(manifest: Manifest) -> float:
    """The schedule's device buffers plus the pinned staging of the host-visible ones."""
    denoisers = ("content", "motion") if manifest.has_content else ("motion",)
    plan = build_plan(manifest.batch, manifest.config.image_channels, manifest.height,
                      manifest.width, manifest.sampler, denoisers,
                      cond_channels=manifest.config.cond_channels)
    return sum(device_nbytes(s) * (2 if s.host else 1) for s in plan.buffers) / MB


def export_rows(directory: Path) -> list[dict[str, Any]]:
    manifest = load_manifest(directory, verify_hashes=False)
    rows = []
    for precision, files in (manifest.precisions or {"fp32": manifest.graphs}).items():
        graphs = {g: graph_memory(directory / spec.file) for g, spec in files.items()}
        rows.append({
            "export": directory.name, "preset": manifest.config.name,
            "size": f"{manifest.height}x{manifest.width}", "batch": manifest.batch,
            "precision": precision, "graphs": graphs,
            "weights_mb": sum(g["weights_mb"] for g in graphs.values()),
            "activations_peak_mb": max(g["act_peak_mb"] for g in graphs.values()),
            "activations_sum_mb": max(g["act_sum_mb"] for g in graphs.values()),
            "video_buffers_mb": video_buffers_mb(manifest),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("exports", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [row for d in args.exports for row in export_rows(d)]
    print(f"{'export':24} {'prec':5} {'weights':>9} {'act peak':>9} {'act sum':>9} "
          f"{'buffers':>8}  (MiB; activations: estimates, the largest graph's)")
    for r in rows:
        print(f"{r['export']:24} {r['precision']:5} {r['weights_mb']:9.1f} "
              f"{r['activations_peak_mb']:9.1f} {r['activations_sum_mb']:9.1f} "
              f"{r['video_buffers_mb']:8.2f}")
        for g, m in r["graphs"].items():
            print(f"    {g:8} weights {m['weights_mb']:8.1f}  peak {m['act_peak_mb']:8.1f}  "
                  f"sum {m['act_sum_mb']:8.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"estimate": True, "rows": rows}, indent=2,
                                        default=lambda v: float(np.asarray(v))))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
