"""INT8 against FP32 on ONNX Runtime: one denoiser step and a whole motion frame, interleaved in
one process.

    OMP_NUM_THREADS=1 python bench/int8_speed.py --threads 1 \
        --json bench/results/DATE-int8-speed.json [--engine E]

Without --engine: the small preset (64 x 64, batch 1) with random weights (speed needs no
trained weights; every parameter perturbed by 0.02 N(0,1), so no zero-initialised conv hides
work), exported with DPM-Solver++ 20 and calibrated (`vidm-rt calibrate --videos 4 --frames 8`)
in a temporary folder. With --engine: that export, which must already have int8 graphs.

A step is one launch of the motion graph (INT8: the quantized graph); a frame is the flow and
all sampler steps, so with the default layout (the last step on the FP32 graph) the frame ratio
is the INT8 layout's speed-up at equal schedule. FP32 and INT8 launches alternate, medians.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from vidm_rt.bench import write_report
from vidm_rt.manifest import final_steps, load_manifest
from vidm_rt.runtime import RuntimeOptions, VideoGenerator


def small_export(work: Path) -> Path:
    """The small preset with perturbed random weights, exported and calibrated in `work`."""
    from vidm_rt.checkpoint import save_checkpoint
    from vidm_rt.config import preset
    from vidm_rt.export import ExportOptions, export_checkpoint
    from vidm_rt.export.calibrate import quantize_export, record_calibration
    from vidm_rt.models import ContentModel, MotionModel
    from vidm_rt.testing.weights import perturbed

    cfg = preset("small")
    ckpt = save_checkpoint(work / "small.safetensors", cfg, perturbed(ContentModel(cfg), 1),
                           perturbed(MotionModel(cfg), 2))
    export, _ = export_checkpoint(ckpt, ExportOptions(name="small", out_dir=work,
                                                      sampler="dpmpp2m", steps=20))
    print("exported; calibrating", flush=True)
    record_calibration(export, work / "calibration", videos=4, frames=8)
    quantize_export(export, work / "calibration")
    return export


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", type=Path, help="An export with int8 graphs (default: small).")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60, help="Timed launches per precision.")
    ap.add_argument("--frames", type=int, default=12, help="Timed motion frames per precision.")
    ap.add_argument("--json", type=Path, default=Path("bench/results/int8-speed.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="int8-speed-") as work, contextlib.ExitStack() as stack:
        engine = args.engine or small_export(Path(work))
        manifest = load_manifest(engine)
        gens = {p: stack.enter_context(VideoGenerator(engine, threads=args.threads,
                                                      options=RuntimeOptions(precision=p)))
                for p in ("fp32", "int8")}
        frames, steps = {}, {}
        for p, gen in gens.items():
            for _ in gen.generate(2, seed=0):  # warm-up; leaves a real frame's inputs bound
                pass
            program, step = gen.program("motion"), gen.denoiser_launch("motion", 0)
            frames[p], steps[p] = program.run, step
        times: dict[str, dict[str, list[float]]] = {"step": {}, "frame": {}}
        for kind, launches, n in (("step", steps, args.steps), ("frame", frames, args.frames)):
            times[kind] = {p: [] for p in launches}
            for _ in range(n):
                for p, launch in launches.items():
                    t0 = time.perf_counter()
                    launch()
                    times[kind][p].append((time.perf_counter() - t0) * 1000)
    ms = {kind: {p: statistics.median(v) for p, v in per.items()} for kind, per in times.items()}
    name = manifest.config.name
    print(f"\n| {name}, {args.threads} thread(s) | FP32 ms | INT8 ms | INT8 vs FP32 |")
    print("|---|---|---|---|")
    for kind in ("step", "frame"):
        print(f"| motion {kind} | {ms[kind]['fp32']:.2f} | {ms[kind]['int8']:.2f} | "
              f"{ms[kind]['fp32'] / ms[kind]['int8']:.2f}x |")
    write_report(args.json, args.threads, {
        "preset": name, "engine": str(args.engine or "small (temporary)"),
        "batch": manifest.batch, "sampler": manifest.sampler.sampler,
        "steps": manifest.sampler.steps, "int8_final_steps": final_steps(manifest, "int8"),
        "ms": ms, "speedup": {k: ms[k]["fp32"] / ms[k]["int8"] for k in ms}})


if __name__ == "__main__":
    main()
