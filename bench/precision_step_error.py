"""One denoiser step's error in reduced precision: how ONNX Runtime runs it, how an engine would.

    python bench/precision_step_error.py --engine export/NAME --calib calibration/NAME \
        --threads 2 --json bench/results/precision-step-error.json

On the inputs `vidm-rt calibrate` recorded (real sampling trajectories, every step), each row
runs a variant of a denoiser and reports the relative error of its eps output against the FP32
graph: RMS(eps - eps_fp32) / RMS(eps_fp32), median / 90th percentile / max over the inputs and
the median at the first, middle and last step. Rows:

    fp16 onnxruntime    the export's FP16 graph as the CPU EP runs it (it computes most FP16
                        ops in FP32 and skips their rounding: what `--fp16-as onnxruntime` runs)
    fp16 engine         the same graph with every FP16 tensor rounded (export/fp16_emulation.py,
                        what `vidm-rt quality` runs by default)
    fp16 engine, fp32 OPS   fp16 engine, with the nodes of the listed op types also in FP32
                        (convert_to_fp16's keep_nodes)
    fp16 engine, fp16 OPS   fp16 engine, with only the nodes of the listed op types in FP16
    int8 onnxruntime    the export's INT8 QDQ graph as the CPU EP runs it (Q/DQ fused into
                        integer kernels), when the export has one
    int8 op by op       the same graph with graph optimizations off: every QuantizeLinear,
                        DequantizeLinear and FP32 op as written, the QDQ graph's literal meaning
    fp32, flow fp16 engine   (motion) the FP32 graph fed the flow of an FP16 flow graph
                        (export/fp16.py, rounded as an engine rounds) instead of the FP32 flow:
                        what an FP16 flow network would add. Exports since 2026-11-25 run the
                        flow in FP32 in every precision; this row says why. The previous frames
                        it needs come from generating the calibration's videos again.

The sampling trajectories of the bundled model keep every video at a relative eps error of 1e-4
per step and let some videos become other samples at 3e-4 (bench/RESULTS.md, noise rows of
bench/precision_sensitivity.py): these rows say how far each way of running is from that.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from vidm_rt.bench import cpu_session, fp16_variant, write_report
from vidm_rt.calibrate import calibration_index, calibration_info, load_calibration
from vidm_rt.export.fp16_emulation import emulate_fp16
from vidm_rt.manifest import load_manifest, precision_files

# (row name, op types, whether they are the ones kept FP32 or the only ones in FP16)
VARIANTS = (
    ("fp16 engine, fp32 Add", {"Add"}, "fp32"),
    ("fp16 engine, fp32 Add Mul", {"Add", "Mul"}, "fp32"),
    ("fp16 engine, fp32 Add Mul Sigmoid", {"Add", "Mul", "Sigmoid"}, "fp32"),
    ("fp16 engine, fp16 Conv Gemm Einsum", {"Conv", "Gemm", "Einsum", "MatMul"}, "fp16"),
)


def relative_eps_error(sess: Any, feeds: list[dict[str, np.ndarray]],
                       reference: np.ndarray) -> np.ndarray:
    """Per input: RMS of the eps difference / RMS of FP32's eps (eps: the first half of the
    output channels)."""
    out = np.stack([sess.run(None, f)[0] for f in feeds])
    eps = out.shape[2] // 2
    diff = (out - reference)[:, :, :eps].astype(np.float64)
    ref = reference[:, :, :eps].astype(np.float64)
    return np.sqrt((diff ** 2).mean(axis=(1, 2, 3, 4)) / (ref ** 2).mean(axis=(1, 2, 3, 4)))


def with_fp16_flow(engine: Path, calib: Path, feeds: list[dict[str, np.ndarray]],
                   threads: int | None) -> list[dict[str, np.ndarray]] | None:
    """The motion `feeds` with their flow recomputed by the FP16 flow graph (rounded as an
    engine rounds), from the previous frames of the calibration's FP32 videos, generated again;
    None when the calibration started from given first frames (not kept)."""
    import onnx

    from vidm_rt.precision_quality import generate_videos, precision_generator

    info = calibration_info(calib, engine)
    if info.get("first_frames"):
        return None
    gen = precision_generator(engine, "fp32", None, threads)
    videos = generate_videos(gen, info["videos"] * gen.batch, info["frames"], info["seed"])
    flow_file = str(engine / precision_files(load_manifest(engine), "fp32", engine)["flow"])
    flow = cpu_session(fp16_variant(onnx.load(flow_file)), threads)
    index = calibration_index(calib, "motion")
    out = []
    for f, run, frame in zip(feeds, index["run"], index["frame"], strict=True):
        prev = videos[run * gen.batch:(run + 1) * gen.batch, frame - 1]
        new_flow = flow.run(None, {"x_first": f["x_first"], "x_prev": prev})[0]
        out.append({**f, "flow": new_flow})
    return out


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
        fp16_path = str(args.engine / fp16_files[graph])
        # row name -> (graph file or serialized graph, whether ONNX Runtime optimizes it, inputs)
        rows: dict[str, tuple[str | bytes, bool, list[dict[str, np.ndarray]]]] = {
            "fp16 onnxruntime": (fp16_path, True, feeds),
            "fp16 engine": (emulate_fp16(onnx.load(fp16_path)).SerializeToString(), True, feeds),
        }
        fp32_graph = onnx.load(fp32_path)
        for name, ops, kind in VARIANTS:
            keep = {n.name for n in fp32_graph.graph.node if (n.op_type in ops) == (kind == "fp32")}
            rows[name] = (fp16_variant(fp32_graph, frozenset(keep)), True, feeds)
        int8 = manifest.get("precisions", {}).get("int8", {}).get(graph)
        if int8:
            rows["int8 onnxruntime"] = (str(args.engine / int8["file"]), True, feeds)
            rows["int8 op by op"] = (str(args.engine / int8["file"]), False, feeds)
        if graph == "motion":
            flow_feeds = with_fp16_flow(args.engine, calib, feeds, args.threads)
            if flow_feeds is not None:
                rows["fp32, flow fp16 engine"] = (fp32_path, True, flow_feeds)
        shown = sorted({int(steps.min()), int(np.median(steps)), int(steps.max())})
        for name, (source, optimize, inputs) in rows.items():
            err = relative_eps_error(cpu_session(source, args.threads, optimize), inputs,
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
