"""VIDM's motion generator: denoises frame k from the first frame and frame k-1."""

from __future__ import annotations

import torch
from torch import nn

from ..config import VIDMConfig
from .flow import SPyNet
from .pgn import PositionalGroupNorm
from .unet import UNet


class MotionModel(nn.Module):
    """denoise(x_t, t, k, x_prev, x_first) -> (B, 6, H, W) = [eps, v].

    Flow from x_first to x_prev (SPyNet) joins x_t as UNet input (5 channels; with
    `cfg.prev_input` the flow stage also passes x_prev itself, and the UNet reads 8). A second
    encoder, the UNet's down path with its own weights, reads x_first; at every down level the
    UNet's activation is fused as h_l = r_l + w * UNet_l(h_{l-1}) with r_l = Enc_l(r_{l-1}),
    w = 0.2, and the fused h_l feeds the skip connections. (t, k) enter only through PGN.

    The flow does not depend on t, so the deployable graph is `denoise(x_t, t, k, flow, x_first)`
    with `flow = compute_flow(x_first, x_prev)` (`cfg.cond_channels` channels) run once per frame;
    `forward` runs both, as the reference does at every step.
    """

    def __init__(self, cfg: VIDMConfig) -> None:
        super().__init__()
        self.num_timesteps = cfg.diffusion.num_timesteps
        self.train_frames = cfg.train_frames
        self.fusion_weight = cfg.fusion_weight
        self.prev_input = cfg.prev_input
        c, s, ucfg = cfg.image_channels, cfg.image_size, cfg.motion
        self.flow = SPyNet(cfg.flow)
        self.encoder = UNet(ucfg, s, c, 0, PositionalGroupNorm, encoder_only=True)
        self.unet = UNet(ucfg, s, c + cfg.cond_channels, cfg.output_channels,
                         PositionalGroupNorm)

    def positional_code(self, t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(B,) timesteps, (B,) frame indices -> (B, 2) [t~, k~], [-1, 1] over training."""
        t_n = -1.0 + 2.0 * t.float() / (self.num_timesteps - 1)
        k_n = -1.0 + 2.0 * k.float() / (self.train_frames - 1)
        return torch.stack([t_n, k_n], dim=1)

    def compute_flow(self, x_first: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) x 2 -> (B, cond_channels, H, W): the flow, then x_prev with prev_input."""
        flow = self.flow(x_first, x_prev)
        return torch.cat([flow, x_prev], dim=1) if self.prev_input else flow

    def denoise(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        k: torch.Tensor,
        flow: torch.Tensor,
        x_first: torch.Tensor,
    ) -> torch.Tensor:
        """x_t, x_first (B, 3, H, W), t, k (B,), flow (B, cond_channels, H, W) -> (B, 6, H, W)."""
        tk = self.positional_code(t, k)
        h = torch.cat([x_t, flow], dim=1)
        r = x_first
        skips = []
        for enc_block, unet_block in zip(
            self.encoder.input_blocks, self.unet.input_blocks, strict=True
        ):
            r = enc_block(r, tk)
            h = r + self.fusion_weight * unet_block(h, tk)
            skips.append(h)
        return self.unet.decode(skips, tk)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        k: torch.Tensor,
        x_prev: torch.Tensor,
        x_first: torch.Tensor,
    ) -> torch.Tensor:
        return self.denoise(x_t, t, k, self.compute_flow(x_first, x_prev), x_first)


def with_prev_input(model: MotionModel, cfg: VIDMConfig) -> MotionModel:
    """A `cfg.prev_input` motion model holding `model`'s weights, the UNet's input conv widened
    with zero weights for x_prev: it computes what `model` computes until training moves them."""
    wide = MotionModel(cfg)
    state = wide.state_dict()
    for name, value in model.state_dict().items():
        if value.shape != state[name].shape:  # the input conv: (out, in, kh, kw), more `in`
            state[name] = torch.zeros_like(state[name])
            state[name][:, : value.shape[1]] = value
        else:
            state[name] = value
    wide.load_state_dict(state)
    return wide
