"""`VIDMConfig.prev_input`: the motion UNet reads the previous frame beside the flow; `vidm-rt
train --prev-input` widens a model without it, export and every backend follow the config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidm_rt.checkpoint import load_checkpoint, save_checkpoint
from vidm_rt.cli import main
from vidm_rt.eval.shapes import psnr_per_frame
from vidm_rt.export import ExportOptions, export_checkpoint
from vidm_rt.manifest import load_manifest
from vidm_rt.models.motion import with_prev_input
from vidm_rt.reference import generate_video
from vidm_rt.runtime import VideoGenerator
from vidm_rt.testing.weights import perturbed


@pytest.fixture(scope="module")
def wide(tiny_models):
    """The tiny motion model widened, then its new input weights perturbed (zero weights would
    hide a backend that drops x_prev)."""
    cfg, content, motion = tiny_models
    cfg = dataclasses.replace(cfg, prev_input=True)
    return cfg, content, perturbed(with_prev_input(motion, cfg), 3)


def _inputs(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = (2, 3, 32, 32)
    return [torch.randn(img, generator=g), torch.full((2,), 500.0), torch.full((2,), 3.0),
            torch.rand(img, generator=g) * 2 - 1, torch.rand(img, generator=g) * 2 - 1]


def test_widening_keeps_the_function_and_the_previous_frame_then_counts(tiny_models) -> None:
    cfg, _, motion = tiny_models
    wide_cfg = dataclasses.replace(cfg, prev_input=True)
    assert (cfg.cond_channels, wide_cfg.cond_channels) == (2, 5)
    widened = with_prev_input(motion, wide_cfg)
    x_t, t, k, prev, first = _inputs(0)
    with torch.no_grad():
        assert widened.compute_flow(first, prev).shape == (2, 5, 32, 32)
        torch.testing.assert_close(widened(x_t, t, k, prev, first), motion(x_t, t, k, prev, first),
                                   rtol=0, atol=1e-6)
        moved = perturbed(widened, 3)
        a = moved(x_t, t, k, prev, first)
        flow = moved.compute_flow(first, prev)
        flow[:, 2:] = -flow[:, 2:]  # same flow, another previous frame
        assert (moved.denoise(x_t, t, k, flow, first) - a).abs().max() > 1e-3


@pytest.fixture(scope="module")
def wide_export(tmp_path_factory, wide):
    cfg, content, motion = wide
    tmp = tmp_path_factory.mktemp("prev")
    ckpt = save_checkpoint(tmp / "m.safetensors", cfg, content, motion)
    path, _ = export_checkpoint(ckpt, ExportOptions(name="p", out_dir=tmp, batch=2,
                                                    sampler="ddim", steps=3, frames=4))
    return ckpt, path


def test_checkpoint_manifest_and_info_carry_it(wide_export) -> None:
    ckpt, path = wide_export
    assert load_checkpoint(ckpt).config.prev_input
    manifest = load_manifest(path)
    assert manifest.config.prev_input
    assert manifest.graphs["flow"].outputs["flow"].shape[1] == 5
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0 and "reads the previous frame beside the flow" in result.output


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_every_backend_runs_it_as_the_reference(wide_export, wide, backend: str) -> None:
    _, content, motion = wide
    with VideoGenerator(wide_export[1], backend=backend) as gen:
        video = np.stack(list(gen.generate(4, seed=5)), axis=1)
        table = gen.table
    ref = generate_video(motion, table, 4, content=content, seed=5, batch=2).numpy()
    assert psnr_per_frame(video, ref).min() >= 50


def test_train_widens_from_init_and_resume_keeps_it(tmp_path, tiny_models) -> None:
    cfg, content, motion = tiny_models
    init = save_checkpoint(tmp_path / "init.safetensors", cfg, content, motion)
    out = tmp_path / "run"
    args = ["train", "--init", str(init), "--model", "motion", "--prev-input", "--steps", "2",
            "--batch", "2", "--save-every", "1", "--out", str(out), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    trained = load_checkpoint(out / "model.safetensors")
    assert trained.config.prev_input and trained.motion.unet.input_blocks[0][0].in_channels == 8
    assert trained.content is not None  # carried
    again = CliRunner().invoke(main, [a for a in args if a != "--prev-input"] + ["--resume"])
    assert again.exit_code != 0 and "--prev-input was True" in again.output
    assert "--prev-input" in CliRunner().invoke(main, ["train", "--help"]).output
