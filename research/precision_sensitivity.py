"""How sensitive the sampling trajectories are: PSNR vs FP32 when one thing changes at a time.

    python research/precision_sensitivity.py --engine export/NAME --videos 16 --frames 16 \
        --threads 2 --json bench/results/precision-sensitivity.json

Every row generates the same videos as the FP32 reference (same seed and video numbers, so the
same Philox noise, the export's sampler) with one change, on ONNX Runtime's CPU EP:

    noise:R             FP32 graphs; Gaussian noise of R x the RMS of eps added to every
                        denoiser's eps output (R = 1e-4: a 0.01% error per step)
    weights16:G         FP32 arithmetic, weights of graph G (or "all") rounded to FP16, except
                        the output conv's (what the FP16 graph stores in FP16)
    weights16-out:G     FP32 arithmetic, only the output conv's weights rounded to FP16
    weights8:G          FP32 arithmetic, the weights of the convs the INT8 graph quantizes
                        rounded to its grid (symmetric INT8 per output channel): INT8's
                        weight error without its activation error
    acts8:G             the export's INT8 graph for G with its weights exact (the FP32
                        graph's, not dequantized from INT8): INT8's activation error without
                        its weight error, what INT8 of a model with weights on the INT8 grid
                        would give
    int8keepK:G         the export's INT8 graph for G with the K nodes of largest error in
                        --node-error (research/precision_node_error.py --precision int8, for G)
                        in FP32: the other nodes read their inputs through the INT8 graph's
                        Q/DQ pairs (vidm_rt.bench.int8_variant)
    fp16keepK:G         the FP16 graph for G without its FP32 tail (fp16_fp32_tail 0, the
                        graphs before export revision 4) and with the K of its FP16 nodes of
                        largest error in --node-error (precision_node_error.py --precision
                        fp16) in FP32; FP16 as --fp16-as says
    fp16:G, int8:G      the export's FP16 / INT8 graph for G, FP32 graphs for the rest
                        (G = all: the export's precision as `--precision` runs it; exports
                        before 2026-11-25 had an FP16 flow graph, fp16:flow); FP16 as
                        --fp16-as says, as in `vidm-rt quality` (the runs recorded before
                        2026-11-25 ran it as onnxruntime does)
    int8xN:G            INT8 graphs for G with ranges per group of steps: the steps split into
                        N equal groups, each group's graph quantized (the shipped QuantOptions)
                        on the calibration inputs of its own steps only (--calib)
    backend:NAME        the FP32 model on another vidm-rt backend (torch: the PyTorch
                        reference modules), the reference's own reproducibility
G is a graph name, several joined by "+" (motion+flow), or "all".

A row may end in @LO-HI: the change then applies to denoiser steps LO..HI-1 of every frame only
(step 0 is the noisiest), the other steps run the FP32 graph; the flow network, which runs once
per frame, is changed on every frame if G names it. `fp16:content+motion@16-20` runs the last
four of 20 steps in FP16. A row may end in #LO-HI (after any @LO-HI): the change then applies
to frames LO..HI-1 only (frame 0 is the content model's), the others run FP32;
`int8:all#2-16` makes frames 0 and 1 in FP32, the rest in INT8. For noise rows G is ignored
(noise goes on every denoiser's eps).

Prints, per row, the pooled PSNR per frame (min, mean, frame 0) and how many videos diverged
(fell below 30 dB on some frame: its shapes moved). Writes JSON with every number.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from variants import cpu_session, fp16_variant, int8_variant, quantized_nodes

from vidm_rt.bench import write_report
from vidm_rt.eval.precision import (
    DIVERGED_DB,
    FP16_AS,
    diverged_videos,
    generate_videos,
    precision_generator,
)
from vidm_rt.eval.shapes import psnr_per_frame, psnr_per_video
from vidm_rt.export.fp16 import fp16_nodes
from vidm_rt.export.graph_regions import output_convs
from vidm_rt.manifest import load_manifest, precision_files
from vidm_rt.runtime import VideoGenerator

DEFAULT_ROWS = ("noise:1e-5,noise:1e-4,noise:3e-4,noise:1e-3,"
                "weights16:content,weights16:motion,weights16:flow,weights16:all,"
                "weights16-out:content,weights16-out:motion,"
                "fp16:content,fp16:motion,fp16:all,int8:motion,int8:all")


class NoisyEps:
    """Wraps an InferenceSession run through IO binding: after each run, adds Gaussian noise of
    `relative` x RMS to the eps half of the bound output buffer `out` (B, 2C, H, W)."""

    def __init__(self, session: Any, out: np.ndarray, relative: float,
                 rng: np.random.Generator) -> None:
        self.session, self.out, self.relative, self.rng = session, out, relative, rng

    def io_binding(self) -> Any:
        return self.session.io_binding()

    def run_with_iobinding(self, binding: Any) -> None:
        self.session.run_with_iobinding(binding)
        eps = self.out[:, : self.out.shape[1] // 2]
        rms = float(np.sqrt(np.mean(eps.astype(np.float64) ** 2)))
        eps += (self.relative * rms * self.rng.standard_normal(eps.shape)).astype(np.float32)


class CallSchedule:
    """A denoiser session that runs `by_call[i % len(by_call)]` on its i-th call. The generator
    calls a denoiser in a fixed order (per run of the batch: per frame, per step), so the call
    count says the step and the frame. Every session takes the same buffers, bound once to each."""

    def __init__(self, by_call: list[Any]) -> None:
        self.by_call, self.calls = by_call, 0
        self.sessions = list({id(s): s for s in by_call}.values())

    def io_binding(self) -> Any:
        return AllBindings({id(s): s.io_binding() for s in self.sessions})

    def run_with_iobinding(self, binding: AllBindings) -> None:
        session = self.by_call[self.calls % len(self.by_call)]
        self.calls += 1
        session.run_with_iobinding(binding.by_session[id(session)])


class AllBindings:
    """One IOBinding per session of a CallSchedule, bound to the same buffers."""

    def __init__(self, by_session: dict[int, Any]) -> None:
        self.by_session = by_session

    def bind_ortvalue_input(self, name: str, value: Any) -> None:
        for binding in self.by_session.values():
            binding.bind_ortvalue_input(name, value)

    def bind_ortvalue_output(self, name: str, value: Any) -> None:
        for binding in self.by_session.values():
            binding.bind_ortvalue_output(name, value)


def fp16_grid(w: np.ndarray) -> np.ndarray:
    return w.astype(np.float16).astype(np.float32)


def int8_grid(w: np.ndarray) -> np.ndarray:
    """Symmetric INT8 per output channel (axis 0), as the INT8 graphs store Conv weights."""
    scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
    scale = np.where(scale > 0, scale, 1).reshape(-1, *([1] * (w.ndim - 1)))
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


def rounded_session(path: Path, kind: str, threads: int | None) -> Any:
    """An FP32 session of `path` with some weights rounded (the rows' `kind`):
    weights16 all but the output conv's to FP16, weights16-out only the output conv's,
    weights8 those of the convs the INT8 graphs quantize, to their INT8 grid."""
    import onnx
    from onnx import numpy_helper

    from vidm_rt.export.int8 import QuantOptions, node_groups

    model = onnx.load(str(path))
    nodes = model.graph.node
    if kind == "weights8":
        groups = node_groups(model)
        kept = set().union(*(groups[g] for g in QuantOptions().exclude))
        chosen = {n.input[1] for n in nodes if n.op_type == "Conv" and n.name not in kept}
        grid = int8_grid
    else:
        out_weights = {x for n in nodes if n.name in output_convs(model) for x in n.input[1:]}
        chosen = {i.name for i in model.graph.initializer
                  if (i.name in out_weights) == (kind == "weights16-out")}
        grid = fp16_grid
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and init.name in chosen:
            init.CopyFrom(numpy_helper.from_array(grid(array), init.name))
    return cpu_session(model.SerializeToString(), threads)


def int8_per_step_group(engine: Path, calib: Path, graph: str, groups: int,
                        threads: int | None) -> list[Any]:
    """One INT8 session per step of the export's sampler: the steps split into `groups` equal
    ranges, each range's graph quantized on the calibration inputs recorded at its steps."""
    from vidm_rt.export.calibrate import calibration_index, load_calibration
    from vidm_rt.export.int8 import QuantOptions, quantize_graph

    manifest = load_manifest(engine)
    steps = manifest.sampler.steps
    samples = load_calibration(calib, graph)
    sample_steps = calibration_index(calib, graph)["step"]
    bounds = [round(j * steps / groups) for j in range(groups + 1)]
    by_step = []
    with tempfile.TemporaryDirectory() as tmp:
        for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            work = Path(tmp) / str(j)
            work.mkdir()
            chosen = [x for x, s in zip(samples, sample_steps, strict=True) if lo <= s < hi]
            quantize_graph(engine / manifest.graphs[graph].file, work / "int8.onnx",
                           chosen, QuantOptions(), work)
            by_step += [cpu_session(str(work / "int8.onnx"), threads)] * (hi - lo)
    return by_step


def worst_nodes(node_error: Path | None, graph: str, precision: str, count: int,
                among: Collection[str]) -> set[str]:
    """The `count` nodes of largest error in a research/precision_node_error.py JSON of `graph` at
    `precision`, among the nodes `among`."""
    if node_error is None:
        raise SystemExit(f"{precision}keepK rows need --node-error FILE "
                         f"(research/precision_node_error.py --precision {precision})")
    report = json.loads(node_error.read_text())
    if report["graph"] != graph or report["precision"] != precision:
        raise SystemExit(f"{node_error}: a {report['precision']} node scan of "
                         f"{report['graph']!r}, not {precision} of {graph!r}")
    ranked = sorted((r for r in report["nodes"] if r["node"] in among), key=lambda r: -r["rms"])
    return {r["node"] for r in ranked[:count]}


def parse_range(text: str) -> range | None:
    """"LO-HI" -> range(LO, HI); "" -> None."""
    if not text:
        return None
    lo, hi = (int(x) for x in text.split("-"))
    return range(lo, hi)


def row_setup(row: str, engine: Path, calib: Path, threads: int | None, fp16_as: str,
              frames: int, node_error: Path | None = None):
    """setup(generator): applies the row's change to a generator of the FP32 graphs that makes
    videos of `frames` frames."""
    change, _, frame_range = row.partition("#")
    change, _, step_range = change.partition("@")
    steps_changed, frames_changed = parse_range(step_range), parse_range(frame_range)
    if change.startswith("int8x") and (step_range or frame_range):
        raise SystemExit(f"{row}: int8xN rows run their own per-step schedule (no @ or #)")
    kind, arg = change.split(":")
    manifest = load_manifest(engine)
    graphs = [g for g in ("content", "motion", "flow") if g in manifest.graphs]
    targets = graphs if arg == "all" else arg.split("+")
    precision = ("int8" if kind == "acts8" or kind.startswith("int8keep")
                 else "fp16" if kind.startswith("fp16keep") else kind)
    if precision in ("fp16", "int8"):
        same = precision_files(manifest, precision, engine)
        fp32 = [g for g in targets if same[g] == manifest.graphs[g].file]
        if arg == "all":
            targets = [g for g in targets if g not in fp32]
        elif fp32:
            raise SystemExit(f"{row}: this export's {precision} runs {', '.join(fp32)} in FP32 "
                             "(no such row)")

    def setup(gen: Any) -> None:
        fp32_sessions = dict(gen.backend.sessions)
        change_sessions(gen)
        if steps_changed is None and frames_changed is None:
            return
        steps = manifest.sampler.steps
        sessions = gen.backend.sessions
        for g in ("content", "motion"):
            if g in sessions and sessions[g] is not fp32_sessions[g]:
                # Per run: the content model makes frame 0, the motion model frames 1 on.
                frame_ids = [0] if g == "content" else range(1, frames)
                sessions[g] = CallSchedule([
                    sessions[g] if (steps_changed is None or i in steps_changed)
                    and (frames_changed is None or f in frames_changed) else fp32_sessions[g]
                    for f in frame_ids for i in range(steps)])

    def change_sessions(gen: Any) -> None:
        sessions = gen.backend.sessions
        if kind == "noise":
            rng = np.random.default_rng(0)
            out = gen.backend.arrays["model_out"]
            for g in ("content", "motion"):
                if g in sessions:
                    sessions[g] = NoisyEps(sessions[g], out, float(arg), rng)
        elif kind in ("weights16", "weights16-out", "weights8"):
            files = precision_files(manifest, "fp32", engine)
            for g in targets:
                sessions[g] = rounded_session(engine / files[g], kind, threads)
        elif kind in ("fp16", "int8"):
            from vidm_rt.runtime.ort_backend import OrtBackend

            files = precision_files(manifest, kind, engine)
            mixed = OrtBackend(engine, {g: files[g] for g in targets}, "cpu", threads,
                               emulate_fp16=kind == "fp16" and fp16_as == "engine")
            sessions.update(mixed.sessions)
        elif kind == "acts8" or kind.startswith("int8keep"):
            import onnx

            int8, fp32 = (precision_files(manifest, p, engine) for p in ("int8", "fp32"))
            for g in targets:
                fp32_graph, int8_graph = (onnx.load(str(engine / f[g])) for f in (fp32, int8))
                nodes = quantized_nodes(int8_graph)
                if kind != "acts8":
                    kept = worst_nodes(node_error, g, "int8", int(kind[len("int8keep"):]), nodes)
                    nodes = [n for n in nodes if n not in kept]
                sessions[g] = cpu_session(int8_variant(
                    fp32_graph, int8_graph, nodes, "activation" if kind == "acts8" else "both"),
                    threads)
        elif kind.startswith("fp16keep"):
            import onnx

            files = precision_files(manifest, "fp32", engine)
            for g in targets:
                model = onnx.load(str(engine / files[g]))
                half = fp16_nodes(model, fp32_tail=0)
                kept = worst_nodes(node_error, g, "fp16", int(kind[len("fp16keep"):]), half)
                sessions[g] = cpu_session(fp16_variant(model, half - kept,
                                                       emulate=fp16_as == "engine"), threads)
        elif kind.startswith("int8x"):
            for g in targets:
                sessions[g] = CallSchedule(int8_per_step_group(
                    engine, calib, g, int(kind[len("int8x"):]), threads))
        else:
            raise SystemExit(f"unknown row kind {kind!r} in {row!r}")

    return setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--calib", type=Path,
                    help="calibration folder for int8xN rows (default: calibration/NAME)")
    ap.add_argument("--rows", default=DEFAULT_ROWS, help="comma-separated rows (see the top)")
    ap.add_argument("--node-error", type=Path,
                    help="a node scan (research/precision_node_error.py) for int8keepK / fp16keepK "
                         "rows")
    ap.add_argument("--fp16-as", choices=FP16_AS, default="engine",
                    help="how fp16 rows run, as `vidm-rt quality --fp16-as`")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    def videos(row: str | None = None) -> np.ndarray:
        if row is not None and row.startswith("backend:"):
            gen = VideoGenerator(args.engine, backend=row.split(":")[1], threads=args.threads)
        else:
            gen = precision_generator(args.engine, "fp32", None, args.threads)
            if row is not None:
                row_setup(row, args.engine, calib, args.threads, args.fp16_as, args.frames,
                          args.node_error)(gen)
        with gen:
            return generate_videos(gen, args.videos, args.frames, args.seed)

    calib = args.calib or Path("calibration") / args.engine.name
    reference = videos()
    results = []
    print(f"{'row':24s} {'min dB':>7s} {'mean dB':>7s} {'frame 0':>7s} diverged (first frame)")
    for row in args.rows.split(","):
        video = videos(row)
        pooled = psnr_per_frame(video, reference)
        per_video = psnr_per_video(video, reference)
        diverged = diverged_videos(per_video)
        below = per_video < DIVERGED_DB
        first = sorted(int(np.argmax(b)) for b in below if b.any())
        results.append({"row": row, "psnr_per_frame": pooled.tolist(),
                        "min_psnr": float(pooled.min()), "mean_psnr": float(pooled.mean()),
                        "video_psnr": per_video.tolist(), "diverged_videos": diverged.tolist(),
                        "first_diverged_frames": first})
        print(f"{row:24s} {pooled.min():7.1f} {pooled.mean():7.1f} {pooled[0]:7.1f} "
              f"{diverged[-1]:3d}/{args.videos} {first}", flush=True)
    if args.json:
        write_report(args.json, args.threads, {
            "engine": str(args.engine), "videos": args.videos, "frames": args.frames,
            "seed": args.seed, "fp16_as": args.fp16_as, "diverged_db": DIVERGED_DB,
            "results": results})


if __name__ == "__main__":
    main()
