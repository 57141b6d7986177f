"""Which nodes' rounding costs most: one denoiser step, one node at a time in FP16 or INT8.

    python research/precision_node_error.py --engine export/NAME --graph motion --precision fp16 \
        --threads 2 --json bench/results/fp16-node-error.json

On the inputs `vidm-rt calibrate` recorded (every --every-th), each candidate node runs in the
lower precision alone, the rest of the graph FP32. Its error is the relative eps error against
FP32 (as research/precision_step_error.py), RMS over the inputs and over the inputs of the last
quarter of the steps, where eps is a small difference of large terms.

    fp16  candidates: every node an FP16 graph could round (all but the normalizations, softmax,
          the conditioning and the output convs); the node's inputs, weights and output rounded
          as an FP16 engine rounds them (vidm_rt/precision.py).
    int8  candidates: the nodes the export's INT8 graph quantizes; the node reads its inputs
          through that graph's Q/DQ pairs (its activation scale and its INT8 weights), also
          each part alone (columns "activation" and "weights"). The graph's other Q/DQ pairs,
          on the outputs of the quantized nodes, are not applied.

Errors of independent roundings add in squares. The table ends with the root-sum-square of
each group (fp16: the nodes the export's FP16 graph runs in FP16, the residual stream of
export/graph_regions.py, the other nodes); the JSON also has, in the table's order (largest
error first), each node's share of the graph's convolution FLOPs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from variants import cpu_session, fp16_variant, int8_variant, quantized_nodes, relative_eps_error

from vidm_rt.bench import write_report
from vidm_rt.export.calibrate import calibration_index, load_calibration
from vidm_rt.export.fp16 import fp16_nodes
from vidm_rt.export.graph_regions import NORM_OPS, conditioning_nodes, output_convs, residual_stream
from vidm_rt.manifest import load_manifest, precision_files


def conv_flops(model: Any) -> dict[str, float]:
    """Multiply-adds of each Conv with a constant weight, from the graph's inferred shapes."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    return {n.name: float(np.prod(weights[n.input[1]][1:]) * np.prod(shapes[n.output[0]]))
            for n in model.graph.node if n.op_type == "Conv" and n.input[1] in weights}


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--calib", type=Path, help="calibration folder (default: calibration/NAME)")
    ap.add_argument("--graph", default="motion", choices=("content", "motion"))
    ap.add_argument("--precision", default="fp16", choices=("fp16", "int8"))
    ap.add_argument("--every", type=int, default=1, help="use every N-th calibration input")
    ap.add_argument("--top", type=int, default=25, help="nodes to print")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    calib = args.calib or Path("calibration") / args.engine.name
    manifest = load_manifest(args.engine)
    path = args.engine / precision_files(manifest, "fp32", args.engine)[args.graph]
    feeds = load_calibration(calib, args.graph)[::args.every]
    steps = calibration_index(calib, args.graph)["step"][::args.every]
    late = steps >= steps.max() - (steps.max() + 1) // 4
    reference = np.stack([cpu_session(str(path), args.threads).run(None, f)[0] for f in feeds])
    model = onnx.load(str(path))
    if args.precision == "fp16":
        # Nodes that read activations (not only weights), outside what every FP16 graph keeps
        # FP32.
        activations = {i.name for i in model.graph.input} | {y for n in model.graph.node
                                                             for y in n.output}
        fixed = conditioning_nodes(model) | output_convs(model)
        candidates = [n.name for n in model.graph.node
                      if n.name not in fixed and n.op_type not in NORM_OPS | {"Softmax"}
                      and any(x in activations for x in n.input)]
        groups = {"export's FP16 nodes": fp16_nodes(model),
                  "residual stream": residual_stream(model)}
        variants = {"": lambda name: fp16_variant(model, {name})}
    else:
        int8_file = precision_files(manifest, "int8", args.engine)[args.graph]
        if int8_file == path.name:
            raise SystemExit(f"{args.engine}: no INT8 {args.graph} graph: run `vidm-rt calibrate "
                             f"{args.engine}` first")
        int8 = onnx.load(str(args.engine / int8_file))
        candidates, groups = quantized_nodes(int8), {}
        variants = {part: (lambda name, part=part: int8_variant(model, int8, {name}, part))
                    for part in ("both", "activation", "weights")}
    ops = {n.name: n.op_type for n in model.graph.node}
    flops = conv_flops(model)
    total_flops = sum(flops.values())
    rows = []
    for i, name in enumerate(candidates):
        errors = {part: relative_eps_error(cpu_session(variant(name), args.threads), feeds,
                                           reference) for part, variant in variants.items()}
        err = errors.get("both", errors.get(""))
        rows.append({"node": name, "op": ops[name], "rms": float(np.sqrt(np.mean(err**2))),
                     "rms_late": float(np.sqrt(np.mean(err[late] ** 2))),
                     **{f"rms_{part}": float(np.sqrt(np.mean(e**2)))
                        for part, e in errors.items() if part not in ("", "both")},
                     "flops_share": flops.get(name, 0.0) / total_flops,
                     "groups": [g for g, names in groups.items() if name in names],
                     "errors": err.tolist()})
        print(f"\r{i + 1}/{len(candidates)} nodes", end="", flush=True)
    print()
    rows.sort(key=lambda r: -r["rms"])
    parts = [k for k in rows[0] if k.startswith("rms_") and k != "rms_late"]
    print(f"{'node':32s} {'op':14s} {'rms':>8s} {'last 1/4':>8s} "
          + "".join(f"{p[4:]:>11s}" for p in parts) + f" {'flops':>6s}  group")
    for r in rows[:args.top]:
        print(f"{r['node']:32s} {r['op']:14s} {r['rms']:8.2e} {r['rms_late']:8.2e} "
              + "".join(f"{r[p]:11.2e}" for p in parts)
              + f" {r['flops_share']:6.1%}  " + ", ".join(r["groups"]))
    errors = np.array([r["errors"] for r in rows])
    # Keeping the k worst nodes FP32: what the others leave, and the FLOPs they run.
    left = np.sqrt(np.cumsum((errors[::-1] ** 2), axis=0)[::-1])
    for k, r in enumerate(rows):
        r["rest_median"] = float(np.median(left[k + 1])) if k + 1 < len(rows) else 0.0
        r["rest_flops_share"] = float(sum(x["flops_share"] for x in rows[k + 1:]))
    sums = {}
    for name, members in [*groups.items(), ("other" if groups else "all", None)]:
        pick = np.array([(r["node"] in members) if members is not None else not r["groups"]
                         for r in rows])
        total = np.sqrt((errors[pick] ** 2).sum(axis=0))
        sums[name] = {"nodes": int(pick.sum()), "median": float(np.median(total)),
                      "median_late": float(np.median(total[late]))}
        print(f"root-sum-square, {name} ({pick.sum()} nodes): median {np.median(total):.2e}, "
              f"last quarter of the steps {np.median(total[late]):.2e}")
    if args.json:
        write_report(args.json, args.threads, {
            "engine": str(args.engine), "calib": str(calib), "graph": args.graph,
            "precision": args.precision, "inputs": len(feeds), "groups": sums, "nodes": rows})


if __name__ == "__main__":
    main()
