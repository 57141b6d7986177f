"""Frames past the training length: the "clamp" and "extrapolate" frame-index policies compared.

    python bench/frame_index.py --ckpt vidm_rt/assets/demo-tiny.safetensors --length 3

Generates videos `--length` times the training length F with each policy (same seeds, the
reference sampler, DPM-Solver++ 20 steps) and reports the moving-shapes check on the frames
inside the training range (1..F-1) and past it (F..end), against real clips of the same length.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.data import MovingShapes, MovingShapesSpec
from vidm_rt.quality import check_shapes
from vidm_rt.reference import generate_video
from vidm_rt.schedule import sampler_table

REAL_SEED = 12345


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, type=Path)
    ap.add_argument("--length", type=int, default=3, help="video length in units of F")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    ckpt = load_checkpoint(args.ckpt)
    f = ckpt.config.train_frames
    frames = f * args.length
    real_ds = MovingShapes(MovingShapesSpec(size=ckpt.config.image_size, frames=frames),
                           seed=REAL_SEED)
    real = np.stack([real_ds.clip(i) for i in range(args.videos)])
    table = sampler_table("dpmpp2m", args.steps)
    rows = []
    for policy in ("clamp", "extrapolate"):
        video = generate_video(ckpt.motion, table, frames, content=ckpt.content, seed=0,
                               batch=args.videos, frame_index_policy=policy).numpy()
        for part, sl in (("inside 1..F-1", slice(0, f)), ("past F", slice(f, frames))):
            check = check_shapes(real[:, sl], video[:, sl])
            rows.append({"policy": policy, "frames": part, **check.to_dict()})
            g = check.generated
            print(f"{policy:11s} {part:14s} bg {g.background_fraction:.3f} "
                  f"blobs {g.blobs_per_frame:.2f} disp ratio {check.displacement_ratio:.2f} "
                  f"in range {check.frames_in_range:.2f} passed {check.passed}")
    if args.json:
        args.json.write_text(json.dumps({"frames": frames, "train_frames": f, "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
