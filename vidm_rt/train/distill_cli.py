"""`vidm-rt distill`: the options of DistillConfig as a command."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import user_errors
from .distill import DistillConfig

_D = DistillConfig()


@click.command("distill", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--steps", default=_D.steps, show_default=True, type=click.IntRange(1),
              help="Denoiser steps per frame of the final student.")
@click.option("--from-steps", default=_D.from_steps, show_default=True, type=click.IntRange(2),
              help="The teacher's DDIM steps in the first round: --steps times a power of two. "
                   "Rounds halve it: 64 -> 32 -> ... -> --steps.")
@click.option("--iters-per-round", default=_D.iters_per_round, show_default=True,
              type=click.IntRange(1), help="Optimizer steps of each round.")
@click.option("--out", default=_D.out, show_default=True,
              help="Run folder: checkpoints, students, log.jsonl.")
@click.option("--batch", default=_D.batch, show_default=True, type=click.IntRange(1),
              help="Samples per step and process, per denoiser.")
@click.option("--lr", default=_D.lr, show_default=True, type=float,
              help="AdamW learning rate at each round's start; falls linearly towards 0.")
@click.option("--grad-clip", default=_D.grad_clip, show_default=True, type=float)
@click.option("--data", default=_D.data, show_default=True,
              help="What the teacher was trained on: 'moving-shapes' or a folder of frame "
                   "folders / videos. Its frames are the x0 noised for the student, and the "
                   "motion model's (first, previous, k) conditioning.")
@click.option("--seed", default=_D.seed, show_default=True, type=int)
@click.option("--save-every", default=_D.save_every, show_default=True, type=click.IntRange(1),
              help="Also saved at every round's end.")
@click.option("--keep", default=_D.keep, show_default=True, type=click.IntRange(1),
              help="How many saved checkpoints to keep (round students are always kept).")
@click.option("--log-every", default=_D.log_every, show_default=True, type=click.IntRange(1))
@click.option("--sample-eta", default=_D.sample_eta, show_default=True,
              type=click.FloatRange(0), help="The DDIM eta the student samples with, recorded "
              "in its config (training does not use it). 1: fresh noise at every step, as the "
              "ancestral sampler draws; 0: deterministic.")
@click.option("--device", default=_D.device, show_default=True,
              help="auto, cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest save.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@user_errors
def distill_command(checkpoint: str, resume: bool, quiet: bool, **options: Any) -> None:
    """Distil CHECKPOINT's denoisers into a student that needs --steps DDIM steps per frame.

    \b
    Progressive distillation (Salimans & Ho, ICLR 2022), for the content and the motion model:
    each round halves the steps of a deterministic DDIM sampler (eta 0). The student starts as
    a copy of the teacher and learns to make in one step what the teacher makes in two: from
    z, a real frame noised to the student's timestep, the target is the x0 whose one DDIM step
    lands where the teacher's two steps land (x0 clipped to [-1, 1] in each, as the runtime
    does); the loss is max(SNR, 1) x its squared error (the eps error where SNR > 1, the x0
    error at higher noise).
    The motion model is conditioned on real (first, previous, k) from --data, previous frames
    noised as the checkpoint's conditioning noise sets, as in training. The next round's
    teacher is this round's student, with a fresh AdamW.

    \b
    Timesteps: the runtime's "linspaceN" spacing, whose halvings keep every other timestep, so
    each student step spans exactly two teacher steps and export runs the very timesteps the
    student learned. The student is a checkpoint of the same architecture with its sampler
    (ddim, N steps, linspaceN, eta --sample-eta) in its config: `vidm-rt export` uses it by
    default. On the bundled model, sampling the student with eta 1 is what keeps quality: its
    16-step student gives FVD 1118 with eta 1 and 1736 with eta 0 (docs/distill.md).

    \b
    Writes --out/student<N>.safetensors after each round and model.safetensors (the final
    student); --resume continues exactly where a run stopped. Under
    `torchrun --nproc_per_node N -m vidm_rt.cli distill ...` each process trains on its own
    batches (DDP) and rank 0 writes.

    \b
    Example, 64 -> 32 -> 16 -> 8 -> 4 steps:
      vidm-rt distill runs/train/model.safetensors --steps 4 --out runs/distill4
      vidm-rt export runs/distill4/model.safetensors        (ddim 4, linspace4)
    """
    from .distill_run import distill

    result = distill(DistillConfig(checkpoint=checkpoint, **options), resume=resume,
                     progress=not quiet and sys.stderr.isatty())
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"done: step {result.step}, loss {result.last_loss:.4f}, "
                   f"{result.seconds:.0f} s; student in {options['out']}/model.safetensors")
