"""Does the motion model's flow net compute flow? (docs/quality.md, "where the failures come from")

1. `trained`: the flow of a checkpoint's motion model from frame 0 to frame k of real
   moving-shapes clips: its largest magnitude per video, and how much warping frame k by it
   brings it closer to frame 0 (1.0: no closer than not warping at all).
2. `supervised`: a fresh flow net of the same config trained only on the exact flow of the
   moving shapes (end-point error, as SPyNet is pretrained on Flying Chairs), Adam; the
   end-point error on the pixels that move, against that of predicting no flow.

    python research/flow_diagnostic.py trained [--ckpt vidm_rt/assets/demo-tiny.safetensors]
    python research/flow_diagnostic.py supervised --levels 3 --steps 800 --lr 1e-3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.config import FlowConfig, preset
from vidm_rt.data import MovingShapes, MovingShapesSpec, draw_shapes, trajectories
from vidm_rt.models.flow import SPyNet, flow_warp


def exact_flow(ds: MovingShapes, index: int, k: int) -> np.ndarray:
    """(2, S, S) pixels: each pixel a shape covers (half or more) in frame 0 moves with it to
    frame k; the later-drawn shape wins where two overlap; the background stays."""
    rng = np.random.default_rng([ds.seed, index])
    pos, vel, radius, _, square = draw_shapes(rng, ds.spec)
    path = trajectories(pos, vel, radius, k + 1)
    c = (np.arange(ds.size) + 0.5) / ds.size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    flow = np.zeros((2, ds.size, ds.size), np.float32)
    for j in range(len(radius)):
        dx, dy = np.abs(xx - path[0, j, 0]), np.abs(yy - path[0, j, 1])
        if square[j]:
            outside = np.maximum(dx, dy) - radius[j] * 0.85
        else:
            outside = np.hypot(dx, dy) - radius[j]
        flow[:, 0.5 - outside * ds.size >= 0.5] = ((path[k, j] - path[0, j]) * ds.size)[:, None]
    return flow


def trained(ckpt: str, videos: int) -> None:
    motion = load_checkpoint(ckpt).motion.eval()
    ds = MovingShapes(MovingShapesSpec(frames=16), seed=5)
    clips = torch.from_numpy(np.stack([ds.clip(i) for i in range(videos)]))
    with torch.no_grad():
        for k in (1, 2, 4, 8, 12, 15):
            flow = motion.flow(clips[:, 0], clips[:, k])
            warped = ((flow_warp(clips[:, k], flow) - clips[:, 0]) ** 2).mean()
            plain = ((clips[:, k] - clips[:, 0]) ** 2).mean()
            top = flow.norm(dim=1).amax(dim=(1, 2)).mean()
            print(f"k={k:2d}  warped/unwarped error {warped / plain:.2f}  "
                  f"largest |flow| {top:.1f} px", flush=True)


def supervised(levels: int, steps: int, lr: float) -> None:
    base = preset("tiny").flow
    net = SPyNet(FlowConfig(levels=levels, channels=base.channels, kernel_size=base.kernel_size))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ds = MovingShapes(MovingShapesSpec(frames=16), seed=3)

    def batch(ids: np.ndarray) -> tuple[torch.Tensor, ...]:
        ks = np.random.default_rng(int(ids[0])).integers(1, 15, len(ids))
        clips = [ds.clip(int(i)) for i in ids]
        return (torch.from_numpy(np.stack([c[0] for c in clips])),
                torch.from_numpy(np.stack([c[k] for c, k in zip(clips, ks, strict=True)])),
                torch.from_numpy(np.stack([exact_flow(ds, int(i), int(k))
                                           for i, k in zip(ids, ks, strict=True)])))

    val = batch(np.arange(90_000, 90_064))
    moving = val[2].abs().sum(1) > 0
    rng, t0 = np.random.default_rng(0), time.time()
    for step in range(steps + 1):
        if step % 100 == 0:
            with torch.no_grad():
                err = (net(val[0], val[1]) - val[2]).norm(dim=1)[moving].mean()
            print(f"step {step:5d}  {time.time() - t0:5.0f} s  EPE on moving pixels {err:.2f} px "
                  f"(no flow: {val[2].norm(dim=1)[moving].mean():.2f})", flush=True)
        first, prev, exact = batch(rng.integers(0, 80_000, 16))
        loss = (net(first, prev) - exact).norm(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["trained", "supervised"])
    ap.add_argument("--ckpt", default="vidm_rt/assets/demo-tiny.safetensors")
    ap.add_argument("--videos", type=int, default=256)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.what == "trained":
        trained(args.ckpt, args.videos)
    else:
        supervised(args.levels, args.steps, args.lr)


if __name__ == "__main__":
    main()
