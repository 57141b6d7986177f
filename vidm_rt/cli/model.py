"""`vidm-rt sample`, `import-official` and `info`: the PyTorch models and checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import BUNDLED_MODEL, SAMPLER_CHOICE, first_frame_option, scale_option


@click.command()
@click.option("--ckpt", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint (.safetensors, .pt, or the official VIDM release). "
                   "Default: the bundled demo model.")
@click.option("--preset",
              help="Instead of a checkpoint, an untrained model of this preset (tiny, small, "
                   "clevrer128): a smoke test.")
@click.option("--frames", default=8, show_default=True, type=click.IntRange(1),
              help="Frames per video, the first (content) frame included.")
@click.option("--sampler", default="ancestral", show_default=True, type=SAMPLER_CHOICE,
              help="ancestral = the reference's learned-variance sampler.")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="Denoising steps per frame (the reference uses 100 ancestral steps).")
@click.option("--eta", default=0.0, show_default=True, type=click.FloatRange(0.0),
              help="DDIM eta (0 = deterministic).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1))
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1),
              help="Videos generated together.")
@first_frame_option()
@click.option("--reference-loop", is_flag=True,
              help="Recompute the flow at every step, as the original implementation does.")
@click.option("--train-frames", type=click.IntRange(2),
              help="F of the official checkpoint's frame code (default 128).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output: video.npy, video.gif, video.mp4, or a folder/ of PNG frames.")
@click.option("--fps", default=8.0, show_default=True, type=click.FloatRange(min=0.1))
@scale_option
@quiet_option
@user_errors
def sample(ckpt: Path | None, preset: str | None, frames: int, sampler: str, steps: int, eta: float,
           seed: int, batch: int, first_frame: Path | None, reference_loop: bool,
           train_frames: int | None, out: Path, fps: float, scale: int, quiet: bool) -> None:
    """Generate videos with the PyTorch reference sampler."""
    import numpy as np
    import torch

    from ..checkpoint import load_checkpoint
    from ..config import preset as get_preset
    from ..models import ContentModel, MotionModel
    from ..reference import sample_video
    from ..schedule import sampler_table
    from ..video import check_output, first_frames_for, read_images, write_video

    check_output(out)
    if preset is not None:
        cfg = get_preset(preset)
        torch.manual_seed(seed)
        content, motion = ContentModel(cfg).eval(), MotionModel(cfg).eval()
        click.echo(f"note: sampling an untrained {cfg.name} model", err=True)
    else:
        if ckpt is None and not BUNDLED_MODEL.is_file():
            raise ValueError("no bundled model in this installation: pass --ckpt or --preset")
        loaded = load_checkpoint(ckpt or BUNDLED_MODEL, train_frames=train_frames)
        cfg, content, motion = loaded.config, loaded.content, loaded.motion
        if motion is None:
            raise ValueError(f"{ckpt}: the checkpoint has no motion model")
    first = None
    if first_frame is not None:
        first = torch.from_numpy(first_frames_for(read_images(first_frame, cfg.image_size),
                                                  0, batch))
    table = sampler_table(sampler, steps, eta=eta)
    frames_out = []
    stream = sample_video(motion, table, frames, content=content, first_frame=first, seed=seed,
                          batch=batch, recompute_flow=reference_loop,
                          cond_noise=cfg.cond_noise)
    with progress(frames, f"{cfg.name} {sampler} x{steps}", unit="frame",
                  quiet=quiet) as advance:
        for frame in stream:
            frames_out.append(frame.cpu().numpy())
            advance()
    video = np.stack(frames_out, axis=1)
    for path in write_video(out, video, fps=fps, scale=scale):
        click.echo(f"wrote {path}")



@click.command("import-official")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the vidm-rt checkpoint (.safetensors).")
@click.option("--train-frames", default=128, show_default=True, type=click.IntRange(2),
              help="F of the frame code k~ = -1 + 2k/(F-1); the release was trained with 128.")
@click.option("--raw", is_flag=True, help="Import the raw weights instead of the EMA weights.")
@user_errors
def import_official(checkpoint: Path, out: Path, train_frames: int, raw: bool) -> None:
    """Convert the released VIDM motion checkpoint (.pth.tar) to a vidm-rt checkpoint."""
    from ..atomic import check_writable
    from ..checkpoint import CheckpointError, save_checkpoint
    from ..models.official import load_official_motion

    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint file")
    if out.suffix != ".safetensors":
        raise CheckpointError(f"{out}: the output must be a .safetensors file")
    check_writable(out)
    try:
        cfg, motion = load_official_motion(checkpoint, train_frames=train_frames, use_ema=not raw)
    except Exception as e:
        if isinstance(e, ValueError):
            raise CheckpointError(f"{checkpoint}: {e}") from None
        raise CheckpointError(
            f"{checkpoint}: cannot be read as a torch checkpoint ({type(e).__name__}); "
            "it may be truncated"
        ) from None
    save_checkpoint(out, cfg, motion=motion, metadata={"vidm_rt.source": checkpoint.name})
    n = sum(p.numel() for p in motion.parameters())
    click.echo(f"wrote {out}: motion model, {n:,} parameters, train_frames={train_frames}")


@click.command()
@click.argument("what")
@click.option("--json", "as_json", is_flag=True,
              help="For an export or engine folder: print its whole manifest as JSON.")
@user_errors
def info(what: str, as_json: bool) -> None:
    """Describe an export or engine folder (a short summary), a checkpoint or a preset (config
    and parameter counts)."""
    from ..config import PRESETS, preset

    if Path(what).is_dir():
        import json

        from ..manifest import load_manifest, summary

        manifest = load_manifest(what)
        click.echo(json.dumps(manifest.to_dict(), indent=2) if as_json
                   else "\n".join(summary(manifest, what)))
        return

    if what in PRESETS and not Path(what).exists():
        import torch

        from ..models import ContentModel, MotionModel

        cfg = preset(what)
        with torch.device("meta"):
            content, motion = ContentModel(cfg), MotionModel(cfg)
    else:
        from ..checkpoint import load_checkpoint

        loaded = load_checkpoint(what)
        cfg, content, motion = loaded.config, loaded.content, loaded.motion
    click.echo(cfg.to_json())
    if cfg.sampler is not None:
        s = cfg.sampler
        click.echo(f"sampler: {s.sampler}, {s.steps} steps per frame ({s.spacing}"
                   + (f", eta {s.eta}" if s.eta else "")
                   + "): what the model was distilled for; `vidm-rt export` uses it")
    for role, model in (("content", content), ("motion", motion)):
        if model is None:
            click.echo(f"{role}: not present")
            continue
        total = sum(p.numel() for p in model.parameters())
        parts = ""
        if role == "motion":
            parts = " (" + ", ".join(
                f"{name} {sum(p.numel() for p in getattr(model, name).parameters()):,}"
                for name in ("unet", "encoder", "flow")
            ) + ")"
        click.echo(f"{role}: {total:,} parameters{parts}")


