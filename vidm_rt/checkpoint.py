"""Reading and writing model checkpoints.

The native format is one `.safetensors` file: tensors named `content.*` and `motion.*` (either may
be absent: the released VIDM model has no content generator), and the `VIDMConfig` as JSON in the
file's metadata, so a checkpoint is a single self-describing file and loading runs no pickle.
Also accepted: a torch `.pt` dict `{"config": json, "state_dict": {...}}` and the officially
released VIDM motion checkpoint, both loaded with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write
from .config import VIDMConfig
from .models import ContentModel, MotionModel
from .models.official import is_official_checkpoint, load_official_motion

CONFIG_KEY = "vidm_rt.config"
FORMAT_KEY = "vidm_rt.format"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message names the file and the fix."""


@dataclass
class Checkpoint:
    config: VIDMConfig
    content: ContentModel | None
    motion: MotionModel | None


def save_checkpoint(
    path: str | Path,
    config: VIDMConfig,
    content: ContentModel | None = None,
    motion: MotionModel | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a `.safetensors` checkpoint atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: checkpoints are written as .safetensors files")
    tensors: dict[str, torch.Tensor] = {}
    for role, model in (("content", content), ("motion", motion)):
        if model is not None:
            for k, v in model.state_dict().items():
                tensors[f"{role}.{k}"] = v.detach().to("cpu").contiguous()
    if not tensors:
        raise CheckpointError("nothing to save: give a content model, a motion model or both")
    meta = {CONFIG_KEY: config.to_json(), FORMAT_KEY: FORMAT_VERSION, **(metadata or {})}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _build(config: VIDMConfig, state: dict[str, torch.Tensor], source: Path) -> Checkpoint:
    models: dict[str, torch.nn.Module | None] = {}
    for role, cls in (("content", ContentModel), ("motion", MotionModel)):
        prefix = f"{role}."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            models[role] = None
            continue
        model = cls(config)
        try:
            result = model.load_state_dict(sub, strict=False)
        except RuntimeError as e:  # shape mismatches
            first = str(e).strip().splitlines()[-1].strip()
            raise CheckpointError(
                f"{source}: {role} weights do not fit the config: {first}"
            ) from None
        bad = result.missing_keys or result.unexpected_keys
        if bad:
            kind = "missing" if result.missing_keys else "unexpected"
            raise CheckpointError(
                f"{source}: {role} weights do not match the stored config ({kind} key "
                f"{bad[0]!r}): the file was edited or written by another version"
            )
        models[role] = model.eval()
    if models["content"] is None and models["motion"] is None:
        raise CheckpointError(f"{source}: no content.* or motion.* tensors in the checkpoint")
    return Checkpoint(config, models["content"], models["motion"])  # type: ignore[arg-type]


def checkpoint_config(path: str | Path, train_frames: int | None = None) -> VIDMConfig:
    """A checkpoint's config; of a `.safetensors` file only its metadata is read."""
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                text = (f.metadata() or {}).get(CONFIG_KEY)
            if text is not None:
                return VIDMConfig.from_json(text)
        except (SafetensorError, OSError, ValueError):
            pass  # load_checkpoint says what is wrong with the file
    return load_checkpoint(path, train_frames=train_frames).config


def load_checkpoint(path: str | Path, train_frames: int | None = None) -> Checkpoint:
    """Load any supported checkpoint. `train_frames` only applies to the official release."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({e}); it may be truncated"
            ) from None
        if CONFIG_KEY not in meta:
            raise CheckpointError(f"{path}: no vidm-rt config in the file's metadata")
        try:
            config = VIDMConfig.from_json(meta[CONFIG_KEY])
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
        return _build(config, state, path)

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign pickles
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint ({type(e).__name__}); "
            "it may be truncated or not a checkpoint"
        ) from None
    if is_official_checkpoint(obj):
        try:
            config, motion = load_official_motion(obj, train_frames=train_frames or 128)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
        return Checkpoint(config, None, motion)
    if isinstance(obj, dict) and "config" in obj and "state_dict" in obj:
        try:
            config = VIDMConfig.from_dict(
                json.loads(obj["config"]) if isinstance(obj["config"], str) else obj["config"]
            )
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from None
        return _build(config, obj["state_dict"], path)
    raise CheckpointError(
        f"{path}: not a vidm-rt checkpoint nor the official VIDM release "
        "(expected 'config' and 'state_dict', or 'ema_state_dict')"
    )
