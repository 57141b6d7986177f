"""An engine directory for the torch backend alone: the weights and a manifest, no ONNX graphs.

For a machine that has torch (with CUDA) but neither onnx nor onnxruntime, where `vidm-rt
export` cannot run: the GPU check (scripts/gpu_check.sh) times and tests the torch backend on
such a directory. The manifest is an export manifest marked "torch_only", with the graph names
but no graph files; the other backends refuse it with a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..manifest import write_manifest
from ..schedule import sampler_table
from .options import DEFAULT_SAMPLER, DEFAULT_STEPS


def write_torch_only(checkpoint: Any, out: str | Path, sampler: str = DEFAULT_SAMPLER,
                     steps: int = DEFAULT_STEPS, frames: int | None = None, batch: int = 1) -> Path:
    """Write `out` (model.safetensors + manifest.json) from a loaded checkpoint
    (vidm_rt.checkpoint.Checkpoint); returns `out`."""
    from ..checkpoint import save_checkpoint

    cfg = checkpoint.config
    table = sampler_table(sampler, steps)
    names = (["content"] if checkpoint.content is not None else []) + ["flow", "motion", "update"]
    with atomic_write(out, directory=True) as tmp:
        save_checkpoint(tmp / "model.safetensors", cfg, checkpoint.content, checkpoint.motion)
        write_manifest(tmp, {
            "kind": "onnx", "torch_only": True, "name": Path(out).name,
            "config": cfg.to_dict(), "batch": batch, "height": cfg.image_size,
            "width": cfg.image_size, "frames": frames or cfg.train_frames,
            "frame_index": "clamp", "sampler": table.to_dict(),
            "graphs": {name: {} for name in names}, "files": ["model.safetensors"],
        })
    return Path(out)
