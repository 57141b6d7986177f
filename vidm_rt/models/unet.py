"""The guided_diffusion UNet layout, shared by the content model, the motion UNet and its encoder.

The layout (and the module names `input_blocks`, `middle_block`, `output_blocks`, `out`) follows
guided_diffusion's UNetModel, so the released VIDM weights map onto it block by block. What
conditions the residual blocks is injected as a factory: scale-shift norm for the content model,
Positional Group Normalization for the motion model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import UNetConfig
from .attention import AttentionBlock
from .layers import GroupNormF32, zero_module
from .resblock import ResBlock

CondNormFactory = Callable[[int, int], nn.Module]  # (channels, norm groups) -> module


class CondSequential(nn.Sequential):
    """A sequence of layers in which residual blocks also receive the conditioning tensor."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, cond) if isinstance(layer, ResBlock) else layer(x)
        return x


class UNet(nn.Module):
    """guided_diffusion UNet with resblock up/downsampling.

    Args:
        cfg: channels, levels, attention placement.
        image_size: input H = W (attention placement depends on it).
        in_channels: channels of the input image tensor.
        out_channels: channels of the output; ignored when `encoder_only`.
        cond_norm: factory building the conditioned norm of a residual block from its channel
            count and the number of GroupNorm groups.
        encoder_only: build the down path only (VIDM's first-frame encoder).
    """

    def __init__(
        self,
        cfg: UNetConfig,
        image_size: int,
        in_channels: int,
        out_channels: int,
        cond_norm: CondNormFactory,
        encoder_only: bool = False,
    ) -> None:
        super().__init__()
        attention_ds = set(cfg.attention_downsample_rates(image_size))
        mc, groups = cfg.model_channels, cfg.norm_groups

        def resblock(ch: int, out_ch: int, **updown: bool) -> ResBlock:
            return ResBlock(ch, out_ch, cond_norm(out_ch, groups), groups, cfg.dropout, **updown)

        def attention(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, cfg.num_head_channels, groups)

        if not cfg.resblock_updown:
            raise ValueError("only resblock up/downsampling is implemented (as in VIDM)")

        ch = mc * cfg.channel_mult[0]
        self.input_blocks = nn.ModuleList(
            [CondSequential(nn.Conv2d(in_channels, ch, 3, padding=1))]
        )
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [resblock(ch, mc * mult)]
                ch = mc * mult
                if ds in attention_ds:
                    layers.append(attention(ch))
                self.input_blocks.append(CondSequential(*layers))
                skip_channels.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(CondSequential(resblock(ch, ch, down=True)))
                skip_channels.append(ch)
                ds *= 2
        if encoder_only:
            return

        self.middle_block = CondSequential(resblock(ch, ch), attention(ch), resblock(ch, ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [resblock(ch + skip_channels.pop(), mc * mult)]
                ch = mc * mult
                if ds in attention_ds:
                    layers.append(attention(ch))
                if level and i == cfg.num_res_blocks:
                    layers.append(resblock(ch, ch, up=True))
                    ds //= 2
                self.output_blocks.append(CondSequential(*layers))

        self.out = nn.Sequential(
            GroupNormF32(ch, groups), nn.SiLU(),
            zero_module(nn.Conv2d(ch, out_channels, 3, padding=1)),
        )

    def decode(self, skips: list[torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        """Middle block and up path over the down path's outputs (consumed from the end)."""
        h = self.middle_block(skips[-1], cond)
        for block, skip in zip(self.output_blocks, reversed(skips), strict=True):
            h = block(torch.cat([h, skip], dim=1), cond)
        return self.out(h)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H, W)."""
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, cond)
            skips.append(h)
        return self.decode(skips, cond)
