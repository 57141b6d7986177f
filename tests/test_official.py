"""Import of the released VIDM motion checkpoint, on state dicts laid out like the release.

The official layout (vidm_rt/testing/official.py) is generated from the reference
implementation's constructors, independently of the package's own modules, so a wrong name
mapping or a wrong architecture fails the test.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from vidm_rt.checkpoint import CheckpointError, load_checkpoint
from vidm_rt.config import preset
from vidm_rt.models import MotionModel
from vidm_rt.models.official import (
    CheckpointImportError,
    convert_official_state_dict,
    load_official_motion,
)
from vidm_rt.testing.official import official_state


def test_clevrer128_layout_maps_one_to_one() -> None:
    cfg = preset("clevrer128")
    state = official_state(cfg, device="meta")
    assert any(k.endswith(".new_coords") for k in state)
    with torch.device("meta"):
        target = MotionModel(cfg).state_dict()
    converted = convert_official_state_dict(state, target)
    assert set(converted) == set(target)
    n_params = sum(v.numel() for k, v in converted.items() if not k.startswith("flow."))
    n_flow = sum(v.numel() for k, v in converted.items() if k.startswith("flow."))
    assert n_params == 148_615_046 + 44_122_880
    assert n_flow == 1_440_306  # SPyNet with its ImageNet mean/std buffers


def _expected_name(official: str) -> str:
    """Our key for an official key, from the renaming table of vidm_rt.models.official's
    docstring, written out with string operations (not the module's regular expressions)."""
    name = official.removeprefix("module.")
    parts = name.split(".")
    if parts[:2] == ["spynet", "basic_module"]:  # spynet.basic_module.L.basic_module.I.conv.X
        return f"flow.refiners.{parts[2]}.layers.{2 * int(parts[4])}.{parts[6]}"
    if name in ("spynet.mean", "spynet.std"):
        return "flow." + parts[1]
    for theirs, mine in ((".emb_layers.linear_0.", ".cond_norm.embed."),
                         (".emb_layers.linear_1.0.", ".cond_norm.mlp.0."),
                         (".emb_layers.linear_1.2.", ".cond_norm.mlp.2."),
                         (".emb_layers.out_norm.", ".cond_norm.norm."),
                         (".emb_layers.out_rest.1.", ".out_layers.2.")):
        name = name.replace(theirs, mine)
    return name


def test_tiny_round_trip_places_every_tensor() -> None:
    cfg = preset("tiny")
    state = official_state(cfg)
    _, model = load_official_motion({"ema_state_dict": state, "iters": 7},
                                    train_frames=cfg.train_frames, cfg=cfg)
    ours = model.state_dict()
    dropped = [k for k in state if k.endswith(("coords", "new_coords"))]
    kept = {_expected_name(k): v for k, v in state.items() if k not in dropped}
    assert dropped and set(kept) == set(ours)
    # Every tensor by value under its expected name: two same-shaped tensors swapped fail here.
    for name, value in kept.items():
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)
    # The renamed kinds are all present (the table above is exercised, not only identities).
    renamed = [k for k in kept if k.startswith("flow.") or ".cond_norm." in k
               or ".out_layers.2." in k]
    assert len(renamed) > 20


def test_imported_pgn_computes_the_reference_formula() -> None:
    cfg = preset("tiny")
    state = official_state(cfg, seed=1)
    _, model = load_official_motion({"ema_state_dict": state, "iters": 1},
                                    train_frames=cfg.train_frames, cfg=cfg)
    p = "module.unet.input_blocks.1.0.emb_layers."
    h = torch.randn(2, 32, 32, 32)
    t, k = torch.tensor([10, 990]), torch.tensor([0, 15])
    # Reference: coordinates [linspace_T[t], linspace_F[k], y, x] -> Linear -> sin -> MLP.
    lin_t = torch.linspace(-1, 1, 1000)[t]
    lin_k = torch.linspace(-1, 1, cfg.train_frames)[k]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    coords = torch.stack([lin_t[:, None, None].expand(2, 32, 32),
                          lin_k[:, None, None].expand(2, 32, 32),
                          ys.expand(2, 32, 32), xs.expand(2, 32, 32)], dim=-1)
    f = torch.sin(coords @ state[p + "linear_0.weight"].T + state[p + "linear_0.bias"])
    f = f @ state[p + "linear_1.0.weight"].T + state[p + "linear_1.0.bias"]
    f = torch.nn.functional.silu(f)
    f = f @ state[p + "linear_1.2.weight"].T + state[p + "linear_1.2.bias"]
    scale, shift = f.permute(0, 3, 1, 2).chunk(2, dim=1)
    gn = torch.nn.functional.group_norm(h, cfg.motion.norm_groups, state[p + "out_norm.weight"],
                                        state[p + "out_norm.bias"])
    expected = gn * (1 + scale) + shift
    block = model.unet.input_blocks[1][0]
    got = block.cond_norm(h, model.positional_code(t.float(), k.float()))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.pop("module.unet.out.2.bias"), "no tensor for model key 'unet.out.2.bias'"),
    (lambda s: s.__setitem__("module.unet.extra.weight", torch.zeros(1)),
     "'module.unet.extra.weight'"),
    (lambda s: s.__setitem__("module.unet.out.2.weight", torch.zeros(6, 1, 3, 3)),
     "has shape (6, 1, 3, 3) but the model expects"),
    (lambda s: s.__setitem__("module.head.weight", torch.zeros(1)), "not part of the VIDM"),
])
def test_import_fails_clearly(mutate, message: str) -> None:
    cfg = preset("tiny")
    state = official_state(cfg)
    mutate(state)
    with pytest.raises(CheckpointImportError, match=re.escape(message)):
        load_official_motion({"ema_state_dict": state, "iters": 1}, cfg=cfg, train_frames=16)


def test_wrong_architecture_names_first_mismatch(tmp_path) -> None:
    # A tiny-layout release file read as clevrer128 (what `import-official` assumes).
    path = tmp_path / "tiny_release.pth.tar"
    torch.save({"ema_state_dict": official_state(preset("tiny")), "iters": 3}, path)
    with pytest.raises(CheckpointError, match=r"tiny_release.pth.tar: checkpoint key 'module\."):
        load_checkpoint(path)


def test_train_frames_is_a_parameter_of_the_import() -> None:
    cfg = dataclasses.replace(preset("tiny"), train_frames=128)
    state = official_state(cfg)
    for frames in (128, 64):
        got_cfg, model = load_official_motion({"ema_state_dict": state, "iters": 1},
                                              train_frames=frames, cfg=cfg)
        assert got_cfg.train_frames == model.train_frames == frames
    with pytest.raises(CheckpointImportError, match="no 'ema_state_dict'"):
        load_official_motion({"state_dict": state, "iters": 1}, cfg=cfg)
    _, raw = load_official_motion({"state_dict": state, "iters": 1}, cfg=cfg, use_ema=False)
    assert raw.train_frames == 128
