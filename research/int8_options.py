"""Which INT8 quantization to ship: speed per denoiser step and PSNR vs FP32, per option set.

    vidm-rt calibrate export/NAME --videos 4 --frames 8 --out calibration/NAME
    python research/int8_options.py --engine export/NAME --calib calibration/NAME \
        --threads 1 --videos 4 --frames 16 --json bench/results/int8-options.json

For each option set the export is copied to a temporary folder, quantized from the same
calibration data, and then, in this one process: the motion denoiser's step time (median of
`--repeats` launches, FP32 and INT8 alternating) and the PSNR per frame of INT8 videos against
FP32 videos on identical noise: free-running, and teacher-forced (each motion frame from FP32's
previous frames, the option set's own error per frame without the drift of the autoregression;
vidm_rt.eval.precision). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vidm_rt.bench import write_report
from vidm_rt.eval.precision import generate_videos, precision_generator, teacher_forced_videos
from vidm_rt.eval.shapes import psnr_per_frame
from vidm_rt.export.calibrate import quantize_export
from vidm_rt.export.int8 import QuantOptions
from vidm_rt.runtime import RuntimeOptions, VideoGenerator

BASE = QuantOptions()  # the shipped options
CONFIGS = {
    "keep io+pgn+attention+stream": BASE,
    "keep io+pgn+attention": replace(BASE, exclude=("io", "pgn", "attention")),
    "keep io+pgn": replace(BASE, exclude=("io", "pgn")),
    "keep io+attention": replace(BASE, exclude=("io", "attention")),
    "keep io": replace(BASE, exclude=("io",)),
    "keep nothing": replace(BASE, exclude=()),
    "shipped: Conv only": replace(BASE, op_types=("Conv",)),
    "shipped: per-tensor": replace(BASE, per_channel=False),
    "shipped: reduce_range": replace(BASE, reduce_range=True),
    "shipped: asym. act.": replace(BASE, symmetric_activations=False),
    "shipped: minmax": replace(BASE, calibrate_method="minmax"),
    "shipped: percentile 99.99": replace(BASE, percentile=99.99),
    "shipped: percentile 99.9": replace(BASE, percentile=99.9),
    "shipped: moving-average ranges": replace(BASE, calibrate_method="minmax",
                                              moving_average=True),
    "shipped: int32 bias": replace(BASE, quantize_bias=True),
    "shipped: inputs only": replace(BASE, quantize_outputs=False),
    "shipped: uint8 act.": replace(BASE, activations="uint8", symmetric_activations=False),
    "keep io+pgn: uint8 act.": replace(BASE, exclude=("io", "pgn"), activations="uint8",
                                       symmetric_activations=False),
    "keep io: uint8 act.": replace(BASE, exclude=("io",), activations="uint8",
                                   symmetric_activations=False),
}


def step_times(engines: dict[str, tuple[Path, str]], threads: int | None,
               repeats: int) -> dict[str, float]:
    """Median ms of one motion launch per engine, launches of all engines interleaved."""
    launches = {}
    times: dict[str, list[float]] = {name: [] for name in engines}
    with contextlib.ExitStack() as stack:
        for name, (path, precision) in engines.items():
            gen = stack.enter_context(VideoGenerator(
                path, options=RuntimeOptions(precision=precision), threads=threads))
            for _ in gen.generate(2, seed=0):  # fills the buffers with a real frame's inputs
                pass
            launches[name] = gen.denoiser_launch("motion", gen.table.steps // 2)
            launches[name]()
        for _ in range(repeats):
            for name, launch in launches.items():
                t0 = time.perf_counter()
                launch()
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--calib", required=True, type=Path)
    ap.add_argument("--configs", help="comma-separated names of CONFIGS (default: all)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--videos", type=int, default=4, help="videos for the PSNR (0: no PSNR)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    names = args.configs.split(",") if args.configs else list(CONFIGS)
    if unknown := [n for n in names if n not in CONFIGS]:
        raise SystemExit(f"unknown --configs {', '.join(unknown)}: "
                         f"choose from {', '.join(CONFIGS)}")
    work = Path(tempfile.mkdtemp(prefix="int8-options-"))
    try:
        engines = {"fp32": (args.engine, "fp32")}
        for i, name in enumerate(names):
            copy = work / f"c{i}"
            shutil.copytree(args.engine, copy)
            t0 = time.perf_counter()
            quantize_export(copy, args.calib, CONFIGS[name])
            print(f"{name}: quantized in {time.perf_counter() - t0:.1f} s", flush=True)
            engines[name] = (copy, "int8")
        ms = step_times(engines, args.threads, args.repeats)
        reference = None
        if args.videos:
            with precision_generator(args.engine, "fp32", None, args.threads) as gen:
                reference = generate_videos(gen, args.videos, args.frames, 0)
        rows = []
        for name in names:
            row = {"config": name, "options": CONFIGS[name].to_dict(),
                   "ms_per_step": ms[name], "fp32_ms_per_step": ms["fp32"],
                   "speedup_vs_fp32": ms["fp32"] / ms[name]}
            if reference is not None:
                with precision_generator(engines[name][0], "int8", None, args.threads) as gen:
                    video = generate_videos(gen, args.videos, args.frames, 0)
                    forced = psnr_per_frame(teacher_forced_videos(gen, reference, video[:, 0], 0),
                                            reference)
                psnr = psnr_per_frame(video, reference)
                row.update(min_psnr=float(psnr.min()), mean_psnr=float(psnr.mean()),
                           psnr_per_frame=psnr.tolist(),
                           teacher_forced_min_psnr=float(forced.min()),
                           teacher_forced_mean_psnr=float(forced.mean()),
                           teacher_forced_psnr_per_frame=forced.tolist())
            rows.append(row)
            print(f"{name:32s} {row['ms_per_step']:8.2f} ms  {row['speedup_vs_fp32']:5.2f}x  "
                  f"min {row.get('min_psnr', float('nan')):6.2f} dB  "
                  f"mean {row.get('mean_psnr', float('nan')):6.2f} dB  teacher-forced "
                  f"min {row.get('teacher_forced_min_psnr', float('nan')):6.2f} dB  "
                  f"mean {row.get('teacher_forced_mean_psnr', float('nan')):6.2f} dB", flush=True)
        print(f"{'fp32':32s} {ms['fp32']:8.2f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        write_report(args.json, args.threads, {
            "engine": str(args.engine), "videos": args.videos, "frames": args.frames,
            "results": rows})


if __name__ == "__main__":
    main()
