"""The UNet residual block and the two conditioned normalisations it can use."""

from __future__ import annotations

import torch
from torch import nn

from .layers import Downsample, GroupNormF32, Upsample, zero_module


class ScaleShiftNorm(nn.Module):
    """GroupNorm then FiLM from a timestep embedding (guided_diffusion's use_scale_shift_norm)."""

    def __init__(self, channels: int, groups: int, emb_channels: int) -> None:
        super().__init__()
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * channels))
        self.norm = GroupNormF32(channels, groups)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """h (B, C, H, W), emb (B, E) -> (B, C, H, W)."""
        scale, shift = self.emb_layers(emb).type(h.dtype)[:, :, None, None].chunk(2, dim=1)
        return self.norm(h) * (1 + scale) + shift


class ResBlock(nn.Module):
    """GN-SiLU-conv, optional 2x up/down, conditioned norm, SiLU-dropout-zero conv, plus skip.

    `cond_norm` is a module `(h, cond) -> h` on `out_channels` channels: `ScaleShiftNorm` in the
    content model (cond = timestep embedding), `PositionalGroupNorm` in the motion model
    (cond = [t~, k~]). Everything else is the same block.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        cond_norm: nn.Module,
        groups: int = 32,
        dropout: float = 0.0,
        up: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            GroupNormF32(channels, groups), nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = None
        self.cond_norm = cond_norm
        self.out_layers = nn.Sequential(
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C', H', W') with H' = 2H (up), H/2 (down) or H."""
        if self.h_upd is not None:
            # Resample between the activation and the conv, on both branches (guided_diffusion).
            norm, act, conv = self.in_layers
            h = conv(self.h_upd(act(norm(x))))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        h = self.out_layers(self.cond_norm(h, cond))
        return self.skip_connection(x) + h
