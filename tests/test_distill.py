"""`vidm-rt distill`: the two-step target, the loss falling, exact resume, the student's sampler
carried from its config through export to ONNX Runtime (the C library: tests/test_capi.py),
one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vidm_rt.train.distill_run as distill_run
from vidm_rt.checkpoint import load_checkpoint, save_checkpoint
from vidm_rt.cli import main
from vidm_rt.config import SamplerSpec, VIDMConfig
from vidm_rt.export.options import export_sampler
from vidm_rt.schedule import apply_update, make_schedule, sampler_table
from vidm_rt.train.batches import draw_batch
from vidm_rt.train.distill import (
    DistillConfig,
    ddim_step,
    role_loss,
    round_tables,
    student_config,
    two_step_target,
)
from vidm_rt.train.distill_run import distill


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_models) -> Path:
    cfg, content, motion = tiny_models
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.safetensors", cfg,
                           content, motion)


def _dc(teacher: Path, out: Path, **kw) -> DistillConfig:
    base = dict(checkpoint=str(teacher), out=str(out), steps=1, from_steps=4, iters_per_round=3,
                batch=2, lr=1e-3, save_every=2, log_every=1, device="cpu")
    return DistillConfig(**{**base, **kw})


def _weights(models: dict) -> dict[str, torch.Tensor]:
    return {f"{r}.{k}": v for r, m in models.items() for k, v in m.state_dict().items()}


def test_rounds_halve_and_timesteps_nest() -> None:
    dc = DistillConfig(steps=4, from_steps=64)
    assert dc.rounds == [32, 16, 8, 4]
    for n in (1, 2, 4, 32):
        teacher, student = round_tables(n)
        assert student.spacing == f"linspace{n}"
        np.testing.assert_array_equal(student.model_t, teacher.model_t[::2])


def test_ddim_step_is_the_runtime_update() -> None:
    table = sampler_table("ddim", 4, spacing="linspace4")
    gen = torch.Generator().manual_seed(0)
    x, eps = torch.randn(4, 3, 8, 8, generator=gen) * 2, torch.randn(4, 3, 8, 8, generator=gen)
    got = ddim_step(table, torch.arange(4), x.double(), eps.double())
    for i in range(4):
        zero = torch.zeros_like(x[i].double())
        want, _ = apply_update(table, i, x[i].double(), eps[i].double(), zero, zero, None,
                               exp=torch.exp)
        torch.testing.assert_close(got[i], want, rtol=1e-12, atol=1e-12)


def test_target_is_the_papers_formula() -> None:
    """x~ = (z'' - (s''/s) z) / (a'' - (s''/s) a) with alpha, sigma of the 2-step schedule
    (Salimans & Ho, Algorithm 2), for a teacher whose eps is a fixed function of z."""
    tables = round_tables(2)
    acp = make_schedule("linspace2").alphas_cumprod  # ascending timesteps
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64) * 0.5

    def fake_teacher(x, t):
        return torch.cat([0.3 * x + 1e-4 * t.view(-1, 1, 1, 1), x], dim=1)

    idx = torch.tensor([0, 1])
    got = two_step_target(fake_teacher, tables, idx, z, (), 3)
    for b, i in enumerate(idx.tolist()):
        z2 = z[b:b + 1]
        for j in (2 * i, 2 * i + 1):
            t = torch.tensor([tables[0].model_t[j]], dtype=torch.float32)  # as models get t
            eps = fake_teacher(z2, t)[:, :3]
            zero = torch.zeros_like(z2)
            z2, _ = apply_update(tables[0], j, z2, eps, zero, zero, None, exp=torch.exp)
        a_t, s_t = np.sqrt(acp[1 - i]), np.sqrt(1 - acp[1 - i])
        a_n, s_n = (np.sqrt(acp[0]), np.sqrt(1 - acp[0])) if i == 0 else (1.0, 0.0)
        want = (z2 - s_n / s_t * z[b]) / (a_n - s_n / s_t * a_t)
        torch.testing.assert_close(got[b:b + 1], want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("role", ["content", "motion"])
def test_distillation_steps_lower_the_loss_on_a_fixed_batch(teacher, tiny_models,
                                                            role: str) -> None:
    """A few AdamW steps of the student on the loss against the teacher's two-step target,
    on one fixed batch (frames, student steps, noise, noisy conditioning), lower it."""
    import copy

    from vidm_rt.data import open_dataset

    cfg = tiny_models[0]
    ds = open_dataset("moving-shapes", cfg.train_frames, cfg.image_size, seed=0)
    frozen = getattr(load_checkpoint(teacher), role)
    student = copy.deepcopy(frozen).train()
    tables = round_tables(2)
    batch = draw_batch(role, ds, np.random.default_rng(123), 4)

    def loss():
        return role_loss(student, frozen, role, dict(batch), torch.Generator().manual_seed(5),
                         tables, 0.1, "cpu").mean()

    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.0)
    losses = [float(loss().detach())]
    for _ in range(6):
        opt.zero_grad()
        loss().backward()
        opt.step()
        losses.append(float(loss().detach()))
    # Measured: content falls to 0.43 of its start, motion to 0.86, every step lower.
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.92 * losses[0], losses


def test_resume_equals_uninterrupted_run(teacher, tmp_path, monkeypatch) -> None:
    """Interrupted inside round 0 (teacher: the checkpoint), at the round's end, and inside
    round 1 (teacher: student2.safetensors); resumed each time; the same students."""
    straight = distill(_dc(teacher, tmp_path / "a"), progress=False)
    step = distill_run._step

    class Stop(Exception):
        pass

    for crash_at in (2, 3, 5):  # latest saves: 2 (inside round 0), 3 (its end), 4 (inside 1)
        def stopping(run, i, rnd, it, crash_at=crash_at):
            if i == crash_at:
                raise Stop
            return step(run, i, rnd, it)

        monkeypatch.setattr(distill_run, "_step", stopping)
        with pytest.raises(Stop):
            distill(_dc(teacher, tmp_path / "b"), resume=crash_at != 2, progress=False)
    monkeypatch.setattr(distill_run, "_step", step)
    resumed = distill(_dc(teacher, tmp_path / "b"), resume=True, progress=False)
    a, b = _weights(straight.students), _weights(resumed.students)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    final = load_checkpoint(tmp_path / "b" / "model.safetensors")
    assert final.config.sampler == SamplerSpec("ddim", 1, "linspace1", 1.0)  # --sample-eta
    assert load_checkpoint(tmp_path / "b" / "student2.safetensors").config.sampler.steps == 2
    for k, v in final.motion.state_dict().items():
        assert torch.equal(v, a[f"motion.{k}"]), k
    for run in "ab":  # b's log, resumed three times, reads as one run too
        log = [json.loads(line)
               for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]
        assert [e["student_steps"] for e in log] == [2, 2, 2, 1, 1, 1]


def test_config_sampler_round_trips_and_old_configs_load(tiny_models, tmp_path) -> None:
    cfg = tiny_models[0]
    old = cfg.to_dict()
    assert "sampler" not in old  # configs without one serialise as before
    assert VIDMConfig.from_dict(old).sampler is None
    student = student_config(cfg, 4, 1.0)
    assert VIDMConfig.from_json(student.to_json()) == student
    path = save_checkpoint(tmp_path / "s.safetensors", student, *tiny_models[1:])
    assert load_checkpoint(path).config.sampler == SamplerSpec("ddim", 4, "linspace4", 1.0)
    out = CliRunner().invoke(main, ["info", str(path)])
    assert out.exit_code == 0, out.output
    assert "sampler: ddim, 4 steps per frame (linspace4, eta 1.0)" in out.output


def test_export_options_win_over_the_recorded_sampler() -> None:
    rec = SamplerSpec("ddim", 2, "linspace2", 0.0)
    assert export_sampler(None, None, None, None) == ("ancestral", 20, 0.0, None)
    assert export_sampler(rec, None, None, None) == ("ddim", 2, 0.0, "linspace2")
    assert export_sampler(rec, None, 8, None) == ("ddim", 8, 0.0, None)
    assert export_sampler(rec, "dpmpp2m", None, None) == ("dpmpp2m", 2, 0.0, None)
    assert export_sampler(rec, None, None, 0.5) == ("ddim", 2, 0.5, "linspace2")


@pytest.fixture(scope="module")
def student_export(teacher, tmp_path_factory) -> tuple[Path, Path]:
    """A 1-step student of a short distillation, exported with `vidm-rt export`'s defaults."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("student")
    distill(_dc(teacher, root / "run", iters_per_round=1, save_every=1), progress=False)
    ckpt = root / "run" / "model.safetensors"
    result = CliRunner().invoke(main, ["export", str(ckpt), "--out-dir", str(root), "-q"])
    assert result.exit_code == 0, result.output
    return ckpt, root / "model-ddim1"


def test_student_export_runs_its_sampler_on_onnxruntime(student_export) -> None:
    from vidm_rt.eval.shapes import psnr_per_frame
    from vidm_rt.manifest import load_manifest
    from vidm_rt.reference import generate_video
    from vidm_rt.runtime import VideoGenerator

    ckpt, path = student_export
    manifest = load_manifest(path)
    table = sampler_table("ddim", 1, eta=1.0, spacing="linspace1")
    assert (manifest.sampler.sampler, manifest.sampler.steps, manifest.sampler.spacing,
            manifest.sampler.eta) == ("ddim", 1, "linspace1", 1.0)
    np.testing.assert_array_equal(manifest.sampler.model_t, table.model_t)
    np.testing.assert_array_equal(manifest.sampler.model_t, [999.0])
    student = load_checkpoint(ckpt)
    video = np.stack(list(VideoGenerator(path).generate(3, seed=7)), axis=1)
    ref = generate_video(student.motion, table, 3, content=student.content, seed=7,
                         cond_noise=student.config.cond_noise).numpy()
    assert psnr_per_frame(video, ref).min() >= 90


def test_bad_input_is_one_line(teacher, tmp_path) -> None:
    runner = CliRunner()
    cases = [
        ([str(tmp_path / "missing.safetensors")], "no such checkpoint file"),
        ([str(teacher), "--steps", "3", "--from-steps", "64"], "times a power of two"),
        ([str(teacher), "--steps", "4", "--from-steps", "4"], "times a power of two"),
        ([str(teacher), "--from-steps", "1024", "--steps", "4"], "at most 999"),
        ([str(teacher), "--resume", "--out", str(tmp_path / "empty")], "nothing to resume"),
        ([str(teacher), "--data", str(tmp_path / "nowhere")], str(tmp_path / "nowhere")),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["distill", *args, "--device", "cpu"])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_resume_refuses_changed_options_and_reruns_into_a_used_folder(teacher, tmp_path) -> None:
    distill(_dc(teacher, tmp_path / "run", iters_per_round=1, save_every=1), progress=False)
    runner = CliRunner()
    base = ["distill", str(teacher), "--out", str(tmp_path / "run"), "--steps", "1",
            "--from-steps", "4", "--iters-per-round", "1", "--batch", "2", "--lr", "0.001",
            "--device", "cpu"]
    result = runner.invoke(main, base)
    assert result.exit_code == 2 and "add --resume" in result.output, result.output
    result = runner.invoke(main, [*base, "--resume", "--seed", "3"])
    assert result.exit_code == 2 and "--seed was 0" in result.output, result.output
    student = load_checkpoint(tmp_path / "run" / "model.safetensors")
    result = runner.invoke(main, ["distill", str(tmp_path / "run" / "model.safetensors"),
                                  "--steps", "1", "--from-steps", "4", "--out",
                                  str(tmp_path / "again"), "--device", "cpu"])
    assert result.exit_code == 2 and "--from-steps 1" in result.output, result.output
    assert student.config.sampler.steps == 1


def test_help_explains_method_and_options() -> None:
    result = CliRunner().invoke(main, ["distill", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in ("Progressive distillation", "Salimans & Ho", "one step what the teacher "
                   "makes in two", "max(SNR, 1)", "linspaceN", "--from-steps", "--iters-per-round",
                   "--resume", "torchrun", "conditioning noise", "vidm-rt export"):
        assert phrase in text, phrase
    assert "distill" in CliRunner().invoke(main, ["--help"]).output
    assert dataclasses.asdict(DistillConfig())["from_steps"] == 64
