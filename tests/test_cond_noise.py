"""Conditioning noise: trained with `vidm-rt train --cond-noise`, recorded in the checkpoint's
config, carried into the manifest and applied by every backend as the reference applies it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidm_rt.checkpoint import load_checkpoint, save_checkpoint
from vidm_rt.cli import main
from vidm_rt.eval.shapes import psnr_per_frame
from vidm_rt.export import ExportOptions, export_checkpoint
from vidm_rt.manifest import load_manifest
from vidm_rt.reference import generate_video
from vidm_rt.runtime import VideoGenerator

LEVEL = 0.1


@pytest.fixture(scope="module")
def noisy_export(tmp_path_factory, tiny_models):
    cfg, content, motion = tiny_models
    tmp = tmp_path_factory.mktemp("cond")
    ckpt = save_checkpoint(tmp / "m.safetensors", dataclasses.replace(cfg, cond_noise=LEVEL),
                           content, motion)
    path, _ = export_checkpoint(ckpt, ExportOptions(name="c", out_dir=tmp, batch=2,
                                                    sampler="ddim", steps=3, frames=4))
    return ckpt, path


def test_manifest_and_info_carry_the_level(noisy_export) -> None:
    ckpt, path = noisy_export
    assert load_checkpoint(ckpt).config.cond_noise == LEVEL
    assert load_manifest(path).config.cond_noise == LEVEL
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0 and f"conditioning noise {LEVEL}" in result.output


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_every_backend_applies_it_as_the_reference(noisy_export, tiny_models,
                                                   backend: str) -> None:
    _, content, motion = tiny_models
    with VideoGenerator(noisy_export[1], backend=backend) as gen:
        video = np.stack(list(gen.generate(4, seed=5)), axis=1)
        table = gen.table
    ref = generate_video(motion, table, 4, content=content, seed=5, batch=2,
                         cond_noise=LEVEL).numpy()
    clean = generate_video(motion, table, 4, content=content, seed=5, batch=2).numpy()
    matched, unconditioned = psnr_per_frame(video, ref), psnr_per_frame(video, clean)
    assert matched.min() >= 50
    # The untrained tiny flow barely reacts to the noise, so without it the motion frames are
    # close (measured 77-78 dB), but far from the conditioned reference's 136-306 dB.
    assert unconditioned[0] == matched[0]  # frame 0 has no conditioning
    assert np.all(matched[1:] > unconditioned[1:] + 30)


def test_teacher_forced_frames_get_it_too(noisy_export, tiny_models) -> None:
    _, _, motion = tiny_models
    first = np.random.default_rng(2).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    prev = np.random.default_rng(3).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    with VideoGenerator(noisy_export[1]) as gen:
        frame = gen.motion_frame(2, first, prev, seed=7)
        table = gen.table
    # The reference's frame 2 from the same frames 0 and 1: a two-frame video started at
    # `first` whose frame 1 is replaced by `prev` is what motion_frame computes.
    from vidm_rt import noise
    from vidm_rt.reference import denoise_frame

    cond = torch.from_numpy(prev + np.float32(LEVEL) * noise.gaussian_batch(
        7, [0, 1], 2, noise.CONDITION_STEP, (3, 32, 32)))
    flow = motion.compute_flow(torch.from_numpy(first), cond)
    k = torch.full((2,), 2.0)
    with torch.no_grad():
        ref = denoise_frame(lambda x, t: motion.denoise(x, t, k, flow, torch.from_numpy(first)),
                            table, lambda step: torch.from_numpy(noise.gaussian_batch(
                                7, [0, 1], 2, step, (3, 32, 32)))).numpy()
    assert psnr_per_frame(frame[:, None], ref[:, None]).min() >= 50


def test_train_records_it_and_resume_keeps_it(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--model", "motion", "--steps", "2", "--batch", "2",
            "--save-every", "1", "--quiet", "--out", str(out), "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--cond-noise", "0.05"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "model.safetensors").config.cond_noise == 0.05
    assert json.loads((out / "train.json").read_text())["cond_noise"] == 0.05
    again = CliRunner().invoke(main, [*args, "--steps", "3", "--resume", "--cond-noise", "0.2"])
    assert again.exit_code == 2 and "--cond-noise was 0.05" in again.output
    assert "Conditioning-noise" in CliRunner().invoke(main, ["train", "--help"]).output
