"""Where do the bundled model's object failures come from? (docs/quality.md, "drift")

Object events (vidm_rt.eval.objects) of one export in three settings, same seeds:
    free      the default video: content frame, then each motion frame from the model's own frames
    image     free-running motion from a real first frame (no content model)
    forced    teacher-forced: each motion frame made from the real previous frame
and the first frames alone (half-formed shapes: an area far below the smallest real shape). Per
event: the first frame it happens at (min, median, max) and how many videos have it at frame 1,
the content frame's hand-over to the motion model.

    python research/object_failures.py --engine ENGINE --videos 256 --frames 16 \
        --json bench/results/NAME.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vidm_rt.cli.common import default_engine
from vidm_rt.data import MovingShapes, MovingShapesSpec
from vidm_rt.eval.objects import detect
from vidm_rt.eval.precision import generate_videos, teacher_forced_videos
from vidm_rt.eval.shapes import REAL_CLIPS_SEED
from vidm_rt.eval.tracker import object_report
from vidm_rt.runtime import VideoGenerator
from vidm_rt.video import to_uint8


def _hwc(v: np.ndarray) -> np.ndarray:
    return to_uint8(v)  # (N, T, H, W, 3)


def _summary(name: str, report: dict) -> dict:
    shares = {k: round(v["share"], 3) for k, v in report["shares"].items()}
    firsts = {}
    for event in ("appear", "vanish", "kind", "colour", "size"):
        frames = [o["events"][event] for o in report["per_video"] if o["events"][event]]
        firsts[event] = ([int(min(frames)), float(np.median(frames)), int(max(frames)),
                          frames.count(1)] if frames else None)
    print(f"{name:8s} {shares}  first frame min/median/max/videos at frame 1 {firsts}",
          flush=True)
    return {"shares": shares, "first_frames": firsts, "report": report}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", type=Path)
    ap.add_argument("--videos", type=int, default=256)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=900)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--settings", default="free,image,forced")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    engine = args.engine or default_engine(16, print)
    spec = MovingShapesSpec(frames=args.frames)
    real = np.stack([MovingShapes(spec, seed=REAL_CLIPS_SEED).clip(i)
                     for i in range(args.videos)])
    out: dict = {"engine": str(engine), "videos": args.videos, "frames": args.frames,
                 "seed": args.seed, "settings": {}}
    out["settings"]["real"] = _summary("real", object_report(_hwc(real)))
    t0 = time.time()
    with VideoGenerator(engine, backend="onnxruntime", threads=args.threads) as gen:
        for setting in args.settings.split(","):
            if setting == "free":
                v = generate_videos(gen, args.videos, args.frames, args.seed)
                first = _hwc(v[:, :1])[:, 0]
                areas = [s.area for f in first for s in detect(f / 255.0)]
                counts = [len(detect(f / 255.0)) for f in first]
                out["first_frame"] = {
                    "shapes": np.bincount(counts, minlength=4).tolist(),
                    "half_formed_share": float(np.mean(np.array(areas) < 20.0)),
                    "area_quantiles": np.quantile(areas, [0, 0.05, 0.5, 0.95, 1]).tolist()}
                print("first frames", out["first_frame"], flush=True)
            elif setting == "image":
                v = generate_videos(gen, args.videos, args.frames, args.seed,
                                    first_frames=real[:, 0])
            elif setting == "forced":
                v = teacher_forced_videos(gen, real, real[:, 0], args.seed)
            else:
                raise SystemExit(f"unknown setting {setting}")
            out["settings"][setting] = _summary(setting, object_report(_hwc(v)))
    out["seconds"] = time.time() - t0
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
