"""`vidm-rt train` and `python -m vidm_rt.train`: the options of TrainConfig as a command."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import user_errors
from .config import TrainConfig
from .loop import train


def _options(fn: Any) -> Any:
    defaults = TrainConfig()
    opts = [
        click.option("--preset", default=defaults.preset, show_default=True,
                     help="Model preset: tiny, small or clevrer128 (ignored with --init)."),
        click.option("--model", default=defaults.model, show_default=True,
                     type=click.Choice(["content", "motion", "both"]),
                     help="Which denoiser(s) to train; both share one optimizer."),
        click.option("--data", default=defaults.data, show_default=True,
                     help="'moving-shapes' (procedural) or a folder of frame folders / videos."),
        click.option("--out", default=defaults.out, show_default=True,
                     help="Run folder: checkpoints, log.jsonl, previews."),
        click.option("--steps", default=defaults.steps, show_default=True,
                     type=click.IntRange(1), help="Total optimizer steps (including resumed)."),
        click.option("--batch", default=defaults.batch, show_default=True,
                     type=click.IntRange(1), help="Samples per step and process, per model."),
        click.option("--lr", default=defaults.lr, show_default=True, type=float,
                     help="AdamW learning rate (the reference: 2e-5)."),
        click.option("--weight-decay", default=defaults.weight_decay, show_default=True,
                     type=float),
        click.option("--grad-clip", default=defaults.grad_clip, show_default=True, type=float),
        click.option("--ema", default=defaults.ema, show_default=True, type=float,
                     help="EMA decay per step (EMA weights are what export uses)."),
        click.option("--seed", default=defaults.seed, show_default=True, type=int),
        click.option("--save-every", default=defaults.save_every, show_default=True,
                     type=click.IntRange(1)),
        click.option("--keep", default=defaults.keep, show_default=True, type=click.IntRange(1),
                     help="How many saved checkpoints to keep."),
        click.option("--preview-every", default=defaults.preview_every, show_default=True,
                     type=click.IntRange(0), help="Write a preview GIF every N steps (0: never)."),
        click.option("--log-every", default=defaults.log_every, show_default=True,
                     type=click.IntRange(1)),
        click.option("--init", default=None, help="Start from this checkpoint's weights."),
        click.option("--device", default=defaults.device, show_default=True,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--amp/--no-amp", default=defaults.amp, show_default=True,
                     help="bf16 autocast on CUDA."),
        click.option("--cond-noise", type=click.FloatRange(0.0, 1.0, max_open=True),
                     help="Conditioning-noise augmentation against autoregressive drift: the "
                          "motion model trains on previous frames with Gaussian noise of a "
                          "standard deviation uniform in [0, 2 x this] (pixels in [-1, 1]), and "
                          "every video sampled from the checkpoint adds this much noise to each "
                          "previous frame (recorded in its config; export and every backend "
                          "apply it). Default: the --init checkpoint's, else 0 (off)."),
        click.option("--cond-blur", default=defaults.cond_blur, show_default=True,
                     type=click.FloatRange(0.0),
                     help="Conditioning-blur augmentation against drift (training only): the "
                          "motion model trains on previous frames blurred by a Gaussian of a "
                          "standard deviation uniform in [0, this] pixels, so a shape its own "
                          "last frame drew soft is redrawn sharp, its kind taken from the first "
                          "frame. Sampling is unchanged; 0: off."),
        click.option("--prev-input", is_flag=True,
                     help="The motion UNet also reads the previous frame itself, beside the "
                          "flow (not in the released VIDM; docs/quality.md says why). With "
                          "--init from a model without it, its input conv is widened with zero "
                          "weights, so training starts from that model's function. Recorded in "
                          "the checkpoint's config; export and every backend follow it."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out from its latest checkpoint."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@user_errors
def train_command(resume: bool, quiet: bool, **options: Any) -> None:
    """Train the content and/or motion model (P2-weighted hybrid loss, AdamW, EMA)."""
    result = train(TrainConfig(**options), resume=resume,
                   progress=not quiet and sys.stderr.isatty())
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"done: step {result.step}, loss {result.last_loss:.4f}, "
                   f"{result.seconds:.0f} s; weights in {options['out']}/model.safetensors")
