"""SPyNet-style optical flow (Ranjan & Black 2017, as in mmediting's BasicVSR SPyNet).

A coarse-to-fine pyramid: at each level a small conv net refines the upsampled flow from the
reference image, the support image warped by that flow, and the flow itself. VIDM feeds it
(first frame, previous frame) in [-1, 1] and still normalises with ImageNet statistics, as the
released model does; a faithful import keeps that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FlowConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample x at (pixel + flow) bilinearly, border padding.

    x (B, C, H, W), flow (B, 2, H, W) in pixels, channel 0 = dx, 1 = dy -> (B, C, H, W).
    """
    _, _, h, w = x.shape
    gy, gx = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=x.dtype),
        torch.arange(w, device=x.device, dtype=x.dtype),
        indexing="ij",
    )
    # grid_sample's align_corners=True maps -1 and 1 to the centres of the edge pixels.
    sx = 2.0 * (gx + flow[:, 0]) / max(w - 1, 1) - 1.0
    sy = 2.0 * (gy + flow[:, 1]) / max(h - 1, 1) - 1.0
    grid = torch.stack([sx, sy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class FlowRefiner(nn.Module):
    """One pyramid level: conv-ReLU stack, [ref (3), warped supp (3), flow (2)] -> flow delta."""

    def __init__(self, channels: tuple[int, ...], kernel_size: int) -> None:
        super().__init__()
        widths = (8, *channels, 2)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 8, H, W) -> (B, 2, H, W)."""
        return self.layers(x)


class SPyNet(nn.Module):
    """Flow from `ref` to `supp`: (B, 3, H, W) x 2 -> (B, 2, H, W), in pixels of the input."""

    def __init__(self, cfg: FlowConfig) -> None:
        super().__init__()
        self.levels = cfg.levels
        self.refiners = nn.ModuleList(
            [FlowRefiner(cfg.channels, cfg.kernel_size) for _ in range(cfg.levels)]
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def compute_flow(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow at a size divisible by 2**(levels-1)."""
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(self.levels - 1):
            refs.append(F.avg_pool2d(refs[-1], 2, 2))
            supps.append(F.avg_pool2d(supps[-1], 2, 2))
        b, _, h, w = refs[-1].shape
        flow = refs[-1].new_zeros(b, 2, h, w)
        for level, (r, s) in enumerate(zip(reversed(refs), reversed(supps), strict=True)):
            if level:
                flow = 2.0 * F.interpolate(flow, scale_factor=2.0, mode="bilinear",
                                           align_corners=True)
            flow = flow + self.refiners[level](torch.cat([r, flow_warp(s, flow), flow], dim=1))
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        h, w = ref.shape[-2:]
        unit = 2 ** (self.levels - 1)
        h_up, w_up = -(-h // unit) * unit, -(-w // unit) * unit
        if (h_up, w_up) == (h, w):
            return self.compute_flow(ref, supp)
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(
            self.compute_flow(ref, supp), size=(h, w), mode="bilinear", align_corners=False
        )
        # Flow is in pixels of the resized image: rescale to the original grid.
        scale = flow.new_tensor([w / w_up, h / h_up]).view(1, 2, 1, 1)
        return flow * scale
