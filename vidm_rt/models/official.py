"""Import of the officially released VIDM motion checkpoint (MKFMIKU/vidm, CLEVRER 128x128).

The release is a torch pickle `{"iters", "state_dict", "ema_state_dict", "optimizer"}` saved from
DDP, so keys read `module.<encoder|unet|spynet>.<...>`. Its layout and ours differ only in the
names of four things, all mapped here explicitly:

    <resblock>.emb_layers.linear_0.*          -> <resblock>.cond_norm.embed.*     PGN Linear(4->C)
    <resblock>.emb_layers.linear_1.{0,2}.*    -> <resblock>.cond_norm.mlp.{0,2}.* PGN MLP
    <resblock>.emb_layers.out_norm.*          -> <resblock>.cond_norm.norm.*      PGN GroupNorm
    <resblock>.emb_layers.out_rest.1.*        -> <resblock>.out_layers.2.*        zero-init conv
    spynet.basic_module.L.basic_module.I.conv.* -> flow.refiners.L.layers.(2I).*  (mmediting SPyNet)
    spynet.{mean,std}                          -> flow.{mean,std}

PGN layers of the release also hold lazily registered buffers `coords` (baked to the first batch
and resolution) and `new_coords` (T x F x 1 x 1 x 2): derived data, dropped here and recomputed
from the input shape by `PositionalGroupNorm`. Everything else must map one to one, with equal
shapes: the import is strict and names the first key that does not fit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import VIDMConfig, preset
from .motion import MotionModel

_RENAMES = [
    (re.compile(r"^spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.conv\.(weight|bias)$"),
     lambda m: f"flow.refiners.{m[1]}.layers.{2 * int(m[2])}.{m[3]}"),
    (re.compile(r"^spynet\.(mean|std)$"), lambda m: f"flow.{m[1]}"),
    (re.compile(r"\.emb_layers\.linear_0\."), lambda m: ".cond_norm.embed."),
    (re.compile(r"\.emb_layers\.linear_1\.([02])\."), lambda m: f".cond_norm.mlp.{m[1]}."),
    (re.compile(r"\.emb_layers\.out_norm\."), lambda m: ".cond_norm.norm."),
    (re.compile(r"\.emb_layers\.out_rest\.1\."), lambda m: ".out_layers.2."),
]
_DERIVED_BUFFERS = re.compile(r"\.emb_layers\.(coords|new_coords)$")
_TOP_LEVEL = ("encoder.", "unet.", "spynet.")


class CheckpointImportError(ValueError):
    """The checkpoint does not have the released VIDM motion model's layout."""


def official_to_vidm_rt_key(key: str) -> str:
    """Rename one official key (without the `module.` prefix) to this package's layout."""
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def convert_official_state_dict(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map an official motion state dict onto `target` (a MotionModel state dict), strictly.

    Raises CheckpointImportError naming the first key with no counterpart, the first shape that
    differs, or the first model tensor the checkpoint does not provide.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if _DERIVED_BUFFERS.search(name):
            continue
        if not name.startswith(_TOP_LEVEL):
            raise CheckpointImportError(
                f"checkpoint key {key!r} is not part of the VIDM motion model "
                "(expected encoder.*, unet.* or spynet.*)"
            )
        ours = official_to_vidm_rt_key(name)
        if ours not in target:
            raise CheckpointImportError(
                f"checkpoint key {key!r} (as {ours!r}) has no counterpart in the model: "
                "the checkpoint is not the configured architecture"
            )
        if tuple(value.shape) != tuple(target[ours].shape):
            raise CheckpointImportError(
                f"checkpoint key {key!r} has shape {tuple(value.shape)} but the model expects "
                f"{tuple(target[ours].shape)} for {ours!r}"
            )
        if ours in converted:
            raise CheckpointImportError(f"checkpoint key {key!r} duplicates {ours!r}")
        converted[ours] = value
    missing = [k for k in target if k not in converted]
    if missing:
        raise CheckpointImportError(
            f"the checkpoint has no tensor for model key {missing[0]!r} "
            f"({len(missing)} missing in all)"
        )
    return converted


def is_official_checkpoint(obj: object) -> bool:
    return isinstance(obj, Mapping) and ("ema_state_dict" in obj or (
        "state_dict" in obj and "iters" in obj))


def load_official_motion(
    source: str | Path | Mapping,
    train_frames: int = 128,
    use_ema: bool = True,
    cfg: VIDMConfig | None = None,
) -> tuple[VIDMConfig, MotionModel]:
    """Build the clevrer128 `MotionModel` from the released checkpoint (a path or a loaded dict).

    `train_frames` is F of the PGN frame code; the model was trained with 128 (the reference's
    video script rebuilds its table with 64, which rescales k~: pass 64 to reproduce that).
    """
    if isinstance(source, (str, Path)):
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    else:
        ckpt = source
    if not is_official_checkpoint(ckpt):
        raise CheckpointImportError(
            "not an official VIDM checkpoint: expected a dict with 'ema_state_dict' "
            "or 'state_dict' and 'iters'"
        )
    which = "ema_state_dict" if use_ema and "ema_state_dict" in ckpt else "state_dict"
    if use_ema and which != "ema_state_dict":
        raise CheckpointImportError(
            "the checkpoint has no 'ema_state_dict': import the raw weights with use_ema=False"
        )
    cfg = dataclasses.replace(cfg or preset("clevrer128"), train_frames=train_frames)
    model = MotionModel(cfg)
    state = convert_official_state_dict(ckpt[which], model.state_dict())
    model.load_state_dict(state, strict=True)
    return cfg, model.eval()
