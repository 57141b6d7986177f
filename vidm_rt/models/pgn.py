"""Positional Group Normalization (PGN), the motion model's only conditioning on (t, k).

    PGN(h)[c, i, j] = GN(h)[c, i, j] * (1 + gamma_c(p_ij)) + beta_c(p_ij)
    p_ij            = [t~, k~, y_i, x_j]
    [gamma, beta]   = Linear(2C -> 2C)(SiLU(Linear(C -> 2C)(sin(Linear(4 -> C)(p_ij)))))

with t~ = -1 + 2t/(T-1), k~ = -1 + 2k/(F-1) (see `MotionModel.positional_code`) and y, x evenly
spaced in [-1, 1] over the rows and columns of h. The grid is derived from h's shape on every call,
so nothing is baked to a batch size or resolution (the reference caches it lazily as a buffer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GroupNormF32


class PositionalGroupNorm(nn.Module):
    """GroupNorm modulated per pixel by a SIREN-like function of (t~, k~, y, x)."""

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__()
        self.embed = nn.Linear(4, channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels),
            nn.SiLU(),
            nn.Linear(2 * channels, 2 * channels),
        )
        self.norm = GroupNormF32(channels, groups)

    def forward(self, h: torch.Tensor, tk: torch.Tensor) -> torch.Tensor:
        """h (B, C, H, W), tk (B, 2) = [t~, k~] -> (B, C, H, W)."""
        _, _, height, width = h.shape
        w = self.embed.weight  # (C, 4): columns act on t~, k~, y, x
        y = torch.linspace(-1.0, 1.0, height, device=h.device, dtype=w.dtype)
        x = torch.linspace(-1.0, 1.0, width, device=h.device, dtype=w.dtype)
        # Linear(4 -> C) is separable: a per-video part from (t~, k~) plus a per-pixel part from
        # (y, x), so the (B, H, W, 4) coordinate tensor is never built.
        per_video = F.linear(tk.to(w.dtype), w[:, :2], self.embed.bias)[:, :, None, None]
        per_pixel = w[:, 2, None, None] * y[None, :, None] + w[:, 3, None, None] * x[None, None, :]
        features = torch.sin(per_video + per_pixel[None])
        # The per-pixel MLP as 1x1 convolutions keeps the tensor channels-first (no transposes).
        lin1, _, lin2 = self.mlp
        features = F.conv2d(features, lin1.weight[:, :, None, None], lin1.bias)
        features = F.conv2d(F.silu(features), lin2.weight[:, :, None, None], lin2.bias)
        gamma, beta = features.type(h.dtype).chunk(2, dim=1)
        return self.norm(h) * (1 + gamma) + beta
