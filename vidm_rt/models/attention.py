"""Spatial self-attention block (guided_diffusion's AttentionBlock, legacy head order)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import GroupNormF32, zero_module


class AttentionBlock(nn.Module):
    """Residual multi-head self-attention over the H*W positions of a feature map.

    The qkv projection is laid out head-major, [head0: q k v, head1: q k v, ...] (guided_diffusion's
    "legacy" order, the one VIDM's released weights use). Softmax runs in float32.
    """

    def __init__(self, channels: int, num_head_channels: int = 64, groups: int = 32) -> None:
        super().__init__()
        # Narrow layers (the small presets) get one head rather than none.
        self.num_heads = max(1, channels // num_head_channels)
        if channels % self.num_heads:
            raise ValueError(f"{channels} channels do not split into heads of {num_head_channels}")
        self.norm = GroupNormF32(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        qkv = self.qkv(self.norm(flat))
        ch = c // self.num_heads
        q, k, v = qkv.reshape(b * self.num_heads, 3 * ch, h * w).split(ch, dim=1)
        # Scaling q and k separately keeps fp16 logits in range (guided_diffusion does the same).
        scale = 1.0 / math.sqrt(math.sqrt(ch))
        logits = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        # Softmax in at least float32: half-precision exp overflows.
        softmax_dtype = torch.promote_types(logits.dtype, torch.float32)
        weights = torch.softmax(logits, dim=-1, dtype=softmax_dtype)
        weights = weights.type(logits.dtype)
        out = torch.einsum("bts,bcs->bct", weights, v).reshape(b, c, h * w)
        return (flat + self.proj_out(out)).reshape(b, c, h, w)
