"""How much a motion frame moves when its conditioning frame moves: the autoregression's gain.

    python bench/conditioning_gain.py --ckpt vidm_rt/assets/demo-tiny.safetensors \
        --relative 1e-3,1e-2 --videos 16 --frames 8 --json bench/results/conditioning-gain.json

The PyTorch reference (FP32) samples videos with DPM-Solver++ 20 steps. For each frame f >= 2
it then generates frame f again, from the same noise, with the previous frame (or the first
frame) plus Gaussian noise of R x its RMS, and reports the gain per video:

    gain = RMS(frame f' - frame f) / RMS(perturbation)

A gain below 1 everywhere would shrink any error along the video; a gain above 1 on the same
video frame after frame would grow it steadily. Prints, per (input, R), the median, geometric
mean and maximum gain and the fraction of (video, frame) pairs above 1. Writes JSON with every
gain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vidm_rt import noise
from vidm_rt.bench import write_report
from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.reference import denoise_frame, generate_video
from vidm_rt.schedule import frame_index, sampler_table


def _rms(a: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,) RMS per video."""
    return a.pow(2).mean(dim=(1, 2, 3)).sqrt()


@torch.no_grad()
def gains(ckpt_path: Path, inputs: list[str], relatives: list[float], videos: int,
          frames: int, seed: int) -> dict[str, np.ndarray]:
    """{"prev:1e-3": (frames - 2, videos) gains, ...} for each input and relative size."""
    ckpt = load_checkpoint(ckpt_path)
    motion, table = ckpt.motion, sampler_table("dpmpp2m", 20)
    video = generate_video(motion, table, frames, content=ckpt.content, seed=seed, batch=videos)
    ids = np.arange(videos)
    shape = tuple(video.shape[2:])
    out: dict[str, list[np.ndarray]] = {f"{i}:{r:g}": [] for i in inputs for r in relatives}
    for f in range(2, frames):
        k = torch.full((videos,), float(frame_index(f, motion.train_frames)))

        def frame(prev: torch.Tensor, first: torch.Tensor, f: int = f,
                  k: torch.Tensor = k) -> torch.Tensor:
            flow = motion.compute_flow(first, prev)
            return denoise_frame(
                lambda x, t: motion.denoise(x, t, k, flow, first), table,
                lambda step: torch.from_numpy(noise.gaussian_batch(seed, ids, f, step, shape)))

        conditioning = {"prev": video[:, f - 1], "first": video[:, 0]}
        reference = video[:, f]  # frame(**conditioning): the same noise and the same inputs
        for name in inputs:
            for r in relatives:
                base = conditioning[name]
                d = torch.randn(base.shape, generator=torch.Generator().manual_seed(f))
                d *= r * base.pow(2).mean().sqrt() / d.pow(2).mean().sqrt()
                moved = frame(**{**conditioning, name: base + d})
                out[f"{name}:{r:g}"].append((_rms(moved - reference) / _rms(d)).numpy())
    return {key: np.stack(rows) for key, rows in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, type=Path)
    ap.add_argument("--inputs", default="prev,first", help="comma-separated: prev, first")
    ap.add_argument("--relative", default="1e-3,1e-2", help="perturbation sizes, x input RMS")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = gains(args.ckpt, args.inputs.split(","), [float(r) for r in args.relative.split(",")],
                   args.videos, args.frames, args.seed)
    print(f"{'input:R':<12} {'median':>7} {'geo-mean':>9} {'max':>6} {'> 1':>6}")
    rows = {}
    for key, g in result.items():
        rows[key] = {"median": float(np.median(g)), "geo_mean": float(np.exp(np.log(g).mean())),
                     "max": float(g.max()), "above_1": float((g > 1).mean()),
                     "gain_per_frame_and_video": g.tolist()}
        r = rows[key]
        print(f"{key:<12} {r['median']:7.2f} {r['geo_mean']:9.2f} {r['max']:6.2f} "
              f"{r['above_1']:6.2f}")
    if args.json:
        write_report(args.json, args.threads, {
            "ckpt": str(args.ckpt), "videos": args.videos, "frames": args.frames, "seed": args.seed,
            "sampler": "dpmpp2m:20", "rows": rows})


if __name__ == "__main__":
    main()
