"""Which nodes' FP16 rounding costs most: one denoiser step, one node at a time in FP16.

    python bench/fp16_node_error.py --engine export/NAME --graph motion --threads 2 \
        --json bench/results/fp16-node-error.json

On the inputs `vidm-rt calibrate` recorded (every --every-th), each candidate node runs in FP16
alone: its inputs, weights and output rounded as an FP16 engine rounds them
(export/fp16_emulation.py), the rest of the graph FP32. Its error is the relative eps error
against FP32 (as bench/precision_step_error.py), RMS over the inputs and over the inputs of the
last quarter of the steps, where eps is a small difference of large terms. Candidates: every
node an FP16 graph could round (all but the normalizations, softmax, the conditioning and the
output convs). Errors of independent roundings add in squares, so the table ends with the
root-sum-square of each group: the nodes the export's FP16 graph runs in FP16, the residual
stream (export/graph_regions.py) and the other nodes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidm_rt.bench import cpu_session, fp16_variant, relative_eps_error, write_report
from vidm_rt.calibrate import calibration_index, load_calibration
from vidm_rt.export.fp16 import fp16_nodes
from vidm_rt.export.graph_regions import NORM_OPS, conditioning_nodes, output_convs, residual_stream
from vidm_rt.manifest import load_manifest, precision_files


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--calib", type=Path, help="calibration folder (default: calibration/NAME)")
    ap.add_argument("--graph", default="motion", choices=("content", "motion"))
    ap.add_argument("--every", type=int, default=1, help="use every N-th calibration input")
    ap.add_argument("--top", type=int, default=25, help="nodes to print")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    calib = args.calib or Path("calibration") / args.engine.name
    files = precision_files(load_manifest(args.engine), "fp32", args.engine)
    path = args.engine / files[args.graph]
    feeds = load_calibration(calib, args.graph)[::args.every]
    steps = calibration_index(calib, args.graph)["step"][::args.every]
    late = steps >= steps.max() - (steps.max() + 1) // 4
    reference = np.stack([cpu_session(str(path), args.threads).run(None, f)[0] for f in feeds])
    model = onnx.load(str(path))
    # Nodes that read activations (not only weights), outside what every FP16 graph keeps FP32.
    activations = {i.name for i in model.graph.input} | {y for n in model.graph.node
                                                         for y in n.output}
    fixed = conditioning_nodes(model) | output_convs(model)
    candidates = [n for n in model.graph.node
                  if n.name not in fixed and n.op_type not in NORM_OPS | {"Softmax"}
                  and any(x in activations for x in n.input)]
    groups = {"export's FP16 nodes": fp16_nodes(model), "residual stream": residual_stream(model)}
    rows = []
    for i, node in enumerate(candidates):
        err = relative_eps_error(cpu_session(fp16_variant(model, {node.name}), args.threads),
                                 feeds, reference)
        rows.append({"node": node.name, "op": node.op_type, "rms": float(np.sqrt(np.mean(err**2))),
                     "rms_late": float(np.sqrt(np.mean(err[late] ** 2))),
                     "groups": [g for g, names in groups.items() if node.name in names],
                     "errors": err.tolist()})
        print(f"\r{i + 1}/{len(candidates)} nodes", end="", flush=True)
    print()
    rows.sort(key=lambda r: -r["rms"])
    print(f"{'node':32s} {'op':14s} {'rms':>8s} {'last 1/4':>8s}  group")
    for r in rows[:args.top]:
        print(f"{r['node']:32s} {r['op']:14s} {r['rms']:8.2e} {r['rms_late']:8.2e}  "
              + ", ".join(r["groups"]))
    errors = np.array([r["errors"] for r in rows])
    sums = {}
    for name, members in [*groups.items(), ("other", None)]:
        pick = np.array([(r["node"] in members) if members is not None else not r["groups"]
                         for r in rows])
        total = np.sqrt((errors[pick] ** 2).sum(axis=0))
        sums[name] = {"nodes": int(pick.sum()), "median": float(np.median(total)),
                      "median_late": float(np.median(total[late]))}
        print(f"root-sum-square, {name} ({pick.sum()} nodes): median {np.median(total):.2e}, "
              f"last quarter of the steps {np.median(total[late]):.2e}")
    if args.json:
        write_report(args.json, args.threads, {"engine": str(args.engine), "calib": str(calib),
                                               "graph": args.graph, "inputs": len(feeds),
                                               "groups": sums, "nodes": rows})


if __name__ == "__main__":
    main()
