"""VIDM's content generator: denoises the first frame from pure noise."""

from __future__ import annotations

import torch
from torch import nn

from ..config import VIDMConfig
from .layers import timestep_embedding
from .resblock import ScaleShiftNorm
from .unet import UNet


class ContentModel(nn.Module):
    """guided_diffusion UNet on cat(x_t, learned constant image), conditioned on t.

    forward(x_t (B, 3, H, W), t (B,) original timestep 0..T-1) -> (B, 6, H, W): eps (channels
    0-2) and the learned-range variance coefficient v in [-1, 1] (channels 3-5).
    """

    def __init__(self, cfg: VIDMConfig) -> None:
        super().__init__()
        ucfg = cfg.content
        self.model_channels = ucfg.model_channels
        emb = 4 * ucfg.model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(ucfg.model_channels, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        c, s = cfg.image_channels, cfg.image_size
        self.constant = nn.Parameter(torch.randn(1, c, s, s))
        self.unet = UNet(
            ucfg, s, 2 * c, cfg.output_channels, lambda ch, groups: ScaleShiftNorm(ch, groups, emb)
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        x = torch.cat([x_t, self.constant.expand(x_t.shape[0], -1, -1, -1)], dim=1)
        return self.unet(x, emb)
