"""One denoiser step's error in reduced precision: how ONNX Runtime runs it, how an engine would.

    python research/precision_step_error.py --engine export/NAME --calib calibration/NAME \
        --threads 2 --json bench/results/precision-step-error.json

On the inputs `vidm-rt calibrate` recorded (real sampling trajectories, every step), each row
runs a variant of a denoiser and reports the relative error of its eps output against the FP32
graph: RMS(eps - eps_fp32) / RMS(eps_fp32), median / 90th percentile / max over the inputs and
the median at the first, middle and last step. Rows:

    fp16 onnxruntime    the export's FP16 graph as the CPU EP runs it (it computes most FP16
                        ops in FP32 and skips their rounding: what `--fp16-as onnxruntime` runs);
                        this row and the next only where the export has an FP16 graph of that
                        denoiser (by default the motion model only)
    fp16 engine         the same graph with every FP16 tensor rounded (vidm_rt/precision.py,
                        what `vidm-rt quality` runs by default)
    fp16 engine, tail fp16          the export's FP16 nodes plus the last convs before the
                        output head that it keeps FP32 (fp16_fp32_tail): the graphs exported
                        before revision 4
    fp16 engine, elementwise fp16   the same with every op but the normalizations and
                        softmax in FP16 outside the conditioning and the residual stream
    fp16 engine, stream fp16        the export's FP16 nodes, the tail convs and the residual
                        stream's convs (input convs, 1x1 skip convs)
    fp16 engine, before 2026-11-25  both: the FP16 graphs exported until then (every op but the
                        normalizations, softmax, conditioning and output conv in FP16)
    int8 onnxruntime    the export's INT8 QDQ graph as the CPU EP runs it (Q/DQ fused into
                        integer kernels), when the export has one
    int8 op by op       the same graph with graph optimizations off: every QuantizeLinear,
                        DequantizeLinear and FP32 op as written, the QDQ graph's literal meaning

The sampling trajectories of the bundled model keep every video at a relative eps error of 1e-4
per step and let some videos become other samples at 3e-4 (bench/RESULTS.md, noise rows of
research/precision_sensitivity.py): these rows say how far each way of running is from that.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from variants import cpu_session, fp16_variant, relative_eps_error

from vidm_rt.bench import write_report
from vidm_rt.export.calibrate import calibration_index, load_calibration
from vidm_rt.export.fp16 import fp16_nodes
from vidm_rt.export.graph_regions import (
    FP16_OPS,
    NORM_OPS,
    conditioning_nodes,
    output_convs,
    residual_stream,
)
from vidm_rt.manifest import load_manifest, precision_files
from vidm_rt.precision import emulate_fp16


def fp16_variants(model: Any) -> dict[str, set[str]]:
    """Row name -> the nodes of `model` in FP16, for the rows that change the export's choice."""
    nodes = model.graph.node
    untailed = fp16_nodes(model, fp32_tail=0)
    fixed = conditioning_nodes(model) | output_convs(model)
    stream = residual_stream(model)
    every = {n.name for n in nodes if n.op_type not in NORM_OPS | {"Softmax"}} - fixed
    stream_compute = {n.name for n in nodes if n.op_type in FP16_OPS} & stream - fixed
    return {"fp16 engine, tail fp16": untailed,
            "fp16 engine, elementwise fp16": every - stream,
            "fp16 engine, stream fp16": untailed | stream_compute,
            "fp16 engine, before 2026-11-25": every}


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--calib", type=Path, help="calibration folder (default: calibration/NAME)")
    ap.add_argument("--graphs", default="content,motion")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    calib = args.calib or Path("calibration") / args.engine.name
    manifest = load_manifest(args.engine)
    fp32_files = precision_files(manifest, "fp32", args.engine)
    fp16_files = precision_files(manifest, "fp16", args.engine)
    results = []
    print(f"{'graph':7s} {'row':34s} {'median':>8s} {'p90':>8s} {'max':>8s}   median at steps")
    for graph in args.graphs.split(","):
        feeds = load_calibration(calib, graph)
        steps = calibration_index(calib, graph)["step"]
        fp32_path = str(args.engine / fp32_files[graph])
        fp32_session = cpu_session(fp32_path, args.threads)
        reference = np.stack([fp32_session.run(None, f)[0] for f in feeds])
        # row name -> (graph file or serialized graph, whether ONNX Runtime optimizes it)
        rows: dict[str, tuple[str | bytes, bool]] = {}
        if fp16_files[graph] != fp32_files[graph]:  # else the export runs this graph FP32
            fp16_path = str(args.engine / fp16_files[graph])
            rows["fp16 onnxruntime"] = (fp16_path, True)
            rows["fp16 engine"] = (emulate_fp16(onnx.load(fp16_path)).SerializeToString(), True)
        fp32_graph = onnx.load(fp32_path)
        for name, half in fp16_variants(fp32_graph).items():
            rows[name] = (fp16_variant(fp32_graph, half), True)
        int8 = (manifest.precisions or {}).get("int8", {}).get(graph)
        if int8:
            rows["int8 onnxruntime"] = (str(args.engine / int8.file), True)
            rows["int8 op by op"] = (str(args.engine / int8.file), False)
        shown = sorted({int(steps.min()), int(np.median(steps)), int(steps.max())})
        for name, (source, optimize) in rows.items():
            err = relative_eps_error(cpu_session(source, args.threads, optimize), feeds,
                                     reference)
            at = {s: float(np.median(err[steps == s])) for s in shown}
            results.append({"graph": graph, "row": name, "median": float(np.median(err)),
                            "p90": float(np.percentile(err, 90)), "max": float(err.max()),
                            "median_at_step": at, "inputs": len(feeds)})
            print(f"{graph:7s} {name:34s} {np.median(err):8.2e} {np.percentile(err, 90):8.2e} "
                  f"{err.max():8.2e}   " + " ".join(f"{s}: {v:.1e}" for s, v in at.items()),
                  flush=True)
    if args.json:
        write_report(args.json, args.threads, {"engine": str(args.engine), "calib": str(calib),
                                               "results": results})


if __name__ == "__main__":
    main()
