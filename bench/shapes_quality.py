"""Moving-shapes quality check of a trained model: generated videos against real clips.

    python bench/shapes_quality.py --ckpt vidm_rt/assets/demo-tiny.safetensors \
        --samplers dpmpp2m:20,ancestral:100 --videos 16 --frames 16 --json out.json

For each sampler, generates `--videos` videos with the PyTorch reference sampler (one batch) and
compares them with as many real moving-shapes clips (drawn with a seed the training never used):
background fraction, blobs per frame, mean centroid displacement, and the pass/fail check of
`vidm_rt.quality.check_shapes`. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vidm_rt.bench import write_report
from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.data import MovingShapes, MovingShapesSpec
from vidm_rt.quality import REAL_CLIPS_SEED, check_shapes
from vidm_rt.reference import generate_video
from vidm_rt.schedule import sampler_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, type=Path)
    ap.add_argument("--samplers", default="dpmpp2m:20,ancestral:100",
                    help="comma-separated sampler:steps")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference-loop", action="store_true",
                    help="recompute the flow at every step (the reference implementation's loop)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    ckpt = load_checkpoint(args.ckpt)
    cfg = ckpt.config
    real_ds = MovingShapes(MovingShapesSpec(size=cfg.image_size, frames=args.frames),
                           seed=REAL_CLIPS_SEED)
    real = np.stack([real_ds.clip(i) for i in range(args.videos)])
    rows = []
    for item in args.samplers.split(","):
        sampler, steps = item.split(":")
        table = sampler_table(sampler, int(steps))
        t0 = time.perf_counter()
        video = generate_video(ckpt.motion, table, args.frames, content=ckpt.content,
                               seed=args.seed, batch=args.videos,
                               recompute_flow=args.reference_loop).numpy()
        seconds = time.perf_counter() - t0
        check = check_shapes(real, video)
        rows.append({"sampler": sampler, "steps": int(steps), "seconds": round(seconds, 1),
                     **check.to_dict()})
    print(f"{'sampler':10s} {'steps':>5s} {'bg frac':>8s} {'blobs':>6s} {'disp':>7s} "
          f"{'disp ratio':>10s} {'in range':>8s} {'passed':>6s}")
    r0 = rows[0]["real"]
    print(f"{'real':10s} {'':>5s} {r0['background_fraction']:8.3f} {r0['blobs_per_frame']:6.2f} "
          f"{r0['mean_displacement']:7.4f}")
    for r in rows:
        g = r["generated"]
        print(f"{r['sampler']:10s} {r['steps']:5d} {g['background_fraction']:8.3f} "
              f"{g['blobs_per_frame']:6.2f} {g['mean_displacement']:7.4f} "
              f"{r['displacement_ratio']:10.2f} {r['frames_in_range']:8.2f} {str(r['passed']):>6s}")
    if args.json:
        write_report(args.json, torch.get_num_threads(), {
            "checkpoint": str(args.ckpt), "preset": cfg.name, "videos": args.videos,
            "frames": args.frames, "results": rows})


if __name__ == "__main__":
    main()
