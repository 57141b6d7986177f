"""What a diverged video looks like: how far its shapes sit from FP32's, in pixels.

    python bench/divergence_shift.py --engine export/NAME --precision fp16 --seed 0 \
        --threads 2 --json bench/results/divergence-shift.json

Generates the same videos on FP32 and on `--precision` (identical noise, the export's
sampler), as `vidm-rt quality` does. For every video that falls below the diverged line (30 dB
vs FP32) it reports, at the first frame below the line, the next frame and the last frame: the
PSNR, the blob counts of both videos (quality.blobs) and the largest distance from a blob of
the FP32 frame to the nearest blob of the other, in pixels. A shift well under a pixel means
the shapes are where FP32 put them and only their edge pixels differ; several pixels or a
different count mean another sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidm_rt.bench import write_report
from vidm_rt.precision_quality import (
    DIVERGED_DB,
    FP16_AS,
    generate_videos,
    precision_generator,
)
from vidm_rt.quality import blobs, default_min_area, psnr_per_video


def frame_shift(a: np.ndarray, b: np.ndarray, size: int) -> dict:
    """Two (C, H, W) frames -> blob counts and the largest nearest-blob distance, in pixels."""
    min_area = default_min_area(size)
    ca, cb = blobs(a, min_area)[1], blobs(b, min_area)[1]
    shift = None
    if len(ca) and len(cb):
        shift = float(np.sqrt(((ca[:, None] - cb[None]) ** 2).sum(-1)).min(axis=1).max() * size)
    return {"blobs_fp32": len(ca), "blobs": len(cb), "shift_px": shift}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, type=Path)
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--fp16-as", choices=FP16_AS, default="engine",
                    help="as `vidm-rt quality --fp16-as` (onnxruntime: the runs before 2026-11-25)")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    video = {p: generate_videos(precision_generator(args.engine, p, None, args.threads,
                                                    args.fp16_as),
                                args.videos, args.frames, args.seed)
             for p in ("fp32", args.precision)}
    ref, low = video["fp32"], video[args.precision]
    size = ref.shape[-1]
    per_video = psnr_per_video(low, ref)
    rows = []
    print(f"{'video':>5s} {'frame':>5s} {'dB':>6s} {'blobs':>7s} {'shift px':>8s}")
    for v in range(args.videos):
        below = np.nonzero(per_video[v] < DIVERGED_DB)[0]
        if not len(below):
            continue
        first = int(below[0])
        for f in sorted({first, min(first + 1, args.frames - 1), args.frames - 1}):
            row = {"video": v, "frame": f, "first_diverged": first,
                   "psnr": float(per_video[v, f]), **frame_shift(ref[v, f], low[v, f], size)}
            rows.append(row)
            shift = "-" if row["shift_px"] is None else f"{row['shift_px']:.2f}"
            print(f"{v:5d} {f:5d} {row['psnr']:6.1f} {row['blobs_fp32']:3d}/{row['blobs']:<3d} "
                  f"{shift:>8s}", flush=True)
    if args.json:
        write_report(args.json, args.threads, {
            "engine": str(args.engine), "precision": args.precision, "fp16_as": args.fp16_as,
            "videos": args.videos, "frames": args.frames, "seed": args.seed,
            "diverged_db": DIVERGED_DB,
            "rows": rows})


if __name__ == "__main__":
    main()
