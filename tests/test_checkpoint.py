"""Native checkpoints: safetensors with the config in its metadata."""

from __future__ import annotations

import json

import pytest
import torch

from vidm_rt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_safetensors_round_trip(tmp_path, tiny_models) -> None:
    cfg, content, motion = tiny_models
    path = save_checkpoint(tmp_path / "m.safetensors", cfg, content, motion)
    loaded = load_checkpoint(path)
    assert loaded.config == cfg
    for a, b in ((content, loaded.content), (motion, loaded.motion)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(va, vb)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left


def test_float16_stored_checkpoint_loads_as_float32(tmp_path, tiny_models) -> None:
    """The bundled model is stored in FP16 (assets/README.md): it loads into FP32 models."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    cfg, content, motion = tiny_models
    path = save_checkpoint(tmp_path / "m.safetensors", cfg, content, motion)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        half = {k: f.get_tensor(k).half() for k in f.keys()}  # noqa: SIM118 - not a dict
    save_file(half, str(tmp_path / "h.safetensors"), metadata=meta)
    loaded = load_checkpoint(tmp_path / "h.safetensors")
    for role, model in (("content", loaded.content), ("motion", loaded.motion)):
        for k, v in model.state_dict().items():
            assert v.dtype == torch.float32
            assert torch.equal(v, half[f"{role}.{k}"].float())


def test_motion_only_checkpoint(tmp_path, tiny_models) -> None:
    cfg, _, motion = tiny_models
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", cfg, motion=motion))
    assert loaded.content is None and loaded.motion is not None


def test_torch_pt_checkpoint(tmp_path, tiny_models) -> None:
    cfg, content, _ = tiny_models
    state = {f"content.{k}": v for k, v in content.state_dict().items()}
    torch.save({"config": cfg.to_json(), "state_dict": state}, tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.motion is None and loaded.config == cfg


def test_bad_checkpoints_fail_clearly(tmp_path, tiny_models) -> None:
    cfg, content, motion = tiny_models
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    good = save_checkpoint(tmp_path / "m.safetensors", cfg, content, motion)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    truncated_pt = tmp_path / "t.pt"
    torch.save({"config": cfg.to_json(), "state_dict": {}}, truncated_pt)
    truncated_pt.write_bytes(truncated_pt.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated_pt)
    other = tmp_path / "o.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(CheckpointError, match="not a vidm-rt checkpoint"):
        load_checkpoint(other)
    # Weights that do not match the stored config (here: the small preset's config).
    from vidm_rt.config import preset

    mismatched = tmp_path / "x.pt"
    state = {f"motion.{k}": v for k, v in motion.state_dict().items()}
    torch.save({"config": json.loads(preset("small").to_json()), "state_dict": state}, mismatched)
    with pytest.raises(CheckpointError, match="motion weights do not"):
        load_checkpoint(mismatched)
    with pytest.raises(CheckpointError, match=".safetensors"):
        save_checkpoint(tmp_path / "m.bin", cfg, content)
