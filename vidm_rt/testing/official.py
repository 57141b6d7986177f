"""The released VIDM motion checkpoint's state-dict layout, generated from the reference
implementation's constructors (MKFMIKU/vidm cunet.UNetModel / EncoderUNetModel, mmediting
SPyNet) independently of the package's own modules, so that a wrong name mapping or a wrong
architecture of the import fails its tests (needs torch for `official_state`)."""

from __future__ import annotations

from typing import Any

from ..config import VIDMConfig

Shape = tuple[int, ...]


def _resblock(prefix: str, ch: int, out: int, frames: int, coords_hw: int | None) -> dict:
    keys = {
        f"{prefix}.in_layers.0.weight": (ch,), f"{prefix}.in_layers.0.bias": (ch,),
        f"{prefix}.in_layers.2.weight": (out, ch, 3, 3), f"{prefix}.in_layers.2.bias": (out,),
        f"{prefix}.emb_layers.linear_0.weight": (out, 4),
        f"{prefix}.emb_layers.linear_0.bias": (out,),
        f"{prefix}.emb_layers.linear_1.0.weight": (2 * out, out),
        f"{prefix}.emb_layers.linear_1.0.bias": (2 * out,),
        f"{prefix}.emb_layers.linear_1.2.weight": (2 * out, 2 * out),
        f"{prefix}.emb_layers.linear_1.2.bias": (2 * out,),
        f"{prefix}.emb_layers.out_norm.weight": (out,),
        f"{prefix}.emb_layers.out_norm.bias": (out,),
        f"{prefix}.emb_layers.out_rest.1.weight": (out, out, 3, 3),
        f"{prefix}.emb_layers.out_rest.1.bias": (out,),
    }
    if out != ch:
        keys[f"{prefix}.skip_connection.weight"] = (out, ch, 1, 1)
        keys[f"{prefix}.skip_connection.bias"] = (out,)
    if coords_hw is not None:  # lazily registered buffers of a model that has run once
        keys[f"{prefix}.emb_layers.coords"] = (1, coords_hw, coords_hw, 2)
        keys[f"{prefix}.emb_layers.new_coords"] = (1000, frames, 1, 1, 2)
    return keys


def _attention(prefix: str, ch: int) -> dict:
    return {
        f"{prefix}.norm.weight": (ch,), f"{prefix}.norm.bias": (ch,),
        f"{prefix}.qkv.weight": (3 * ch, ch, 1), f"{prefix}.qkv.bias": (3 * ch,),
        f"{prefix}.proj_out.weight": (ch, ch, 1), f"{prefix}.proj_out.bias": (ch,),
    }


def official_layout(cfg: VIDMConfig, with_coords: bool = True) -> dict[str, Shape]:
    """Key -> shape of the released checkpoint's state dict for a motion model of `cfg`."""
    u, size, frames = cfg.motion, cfg.image_size, cfg.train_frames
    attn_ds = {size // r for r in u.attention_resolutions}
    mc = u.model_channels
    layout: dict[str, Shape] = {}

    def down_path(root: str, in_ch: int) -> list[int]:
        ch = mc * u.channel_mult[0]
        layout[f"{root}.input_blocks.0.0.weight"] = (ch, in_ch, 3, 3)
        layout[f"{root}.input_blocks.0.0.bias"] = (ch,)
        chans, ds, idx, res = [ch], 1, 1, size
        for level, mult in enumerate(u.channel_mult):
            for _ in range(u.num_res_blocks):
                hw = res if with_coords else None
                layout.update(_resblock(f"{root}.input_blocks.{idx}.0", ch, mc * mult, frames, hw))
                ch = mc * mult
                if ds in attn_ds:
                    layout.update(_attention(f"{root}.input_blocks.{idx}.1", ch))
                chans.append(ch)
                idx += 1
            if level != len(u.channel_mult) - 1:
                layout.update(_resblock(f"{root}.input_blocks.{idx}.0", ch, ch, frames, None))
                chans.append(ch)
                idx, ds, res = idx + 1, ds * 2, res // 2
        return chans

    down_path("encoder", 3)
    chans = down_path("unet", 5)
    ch = chans[-1]
    ds = 2 ** (len(u.channel_mult) - 1)
    layout.update(_resblock("unet.middle_block.0", ch, ch, frames, None))
    layout.update(_attention("unet.middle_block.1", ch))
    layout.update(_resblock("unet.middle_block.2", ch, ch, frames, None))
    idx = 0
    for level, mult in reversed(list(enumerate(u.channel_mult))):
        for i in range(u.num_res_blocks + 1):
            layout.update(_resblock(f"unet.output_blocks.{idx}.0", ch + chans.pop(), mc * mult,
                                    frames, None))
            ch = mc * mult
            sub = 1
            if ds in attn_ds:
                layout.update(_attention(f"unet.output_blocks.{idx}.1", ch))
                sub = 2
            if level and i == u.num_res_blocks:
                layout.update(_resblock(f"unet.output_blocks.{idx}.{sub}", ch, ch, frames, None))
                ds //= 2
            idx += 1
    layout["unet.out.0.weight"] = (ch,)
    layout["unet.out.0.bias"] = (ch,)
    layout["unet.out.2.weight"] = (6, ch, 3, 3)
    layout["unet.out.2.bias"] = (6,)

    widths = (8, *cfg.flow.channels, 2)
    kern = cfg.flow.kernel_size
    for level in range(cfg.flow.levels):
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            p = f"spynet.basic_module.{level}.basic_module.{i}.conv"
            layout[f"{p}.weight"] = (cout, cin, kern, kern)
            layout[f"{p}.bias"] = (cout,)
    layout["spynet.mean"] = (1, 3, 1, 1)
    layout["spynet.std"] = (1, 3, 1, 1)
    return layout


def official_state(cfg: VIDMConfig, device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """A random state dict in the released layout (`device` "meta": shapes only)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_layout(cfg).items():
        if device == "meta":
            state[f"module.{key}"] = torch.empty(shape, device="meta")
        else:
            state[f"module.{key}"] = torch.randn(shape, generator=gen) * 0.05
    return state
