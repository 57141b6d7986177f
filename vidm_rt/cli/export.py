"""`vidm-rt export`, `calibrate` and `build`: from a checkpoint to ONNX graphs, INT8 graphs and
TensorRT plans."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import PRECISION_CHOICE, SAMPLER_CHOICE, first_frame_option


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Export folder name (default: <checkpoint>-<sampler><steps>).")
@click.option("--out-dir", default="export", show_default=True, type=click.Path(path_type=Path),
              help="Parent folder of the export.")
@click.option("--height", type=click.IntRange(8), help="Frame height (default: the model's).")
@click.option("--width", type=click.IntRange(8), help="Frame width (default: the model's).")
@click.option("--frames", type=click.IntRange(1),
              help="Default video length (default: the training length).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1),
              help="Videos per run: graphs have static shapes.")
@click.option("--sampler", type=SAMPLER_CHOICE,
              help="Default: the sampler recorded in the checkpoint (a student of `vidm-rt "
                   "distill` records the one it learned), else ancestral (the "
                   "default by both quality judges, docs/quality.md).")
@click.option("--steps", type=click.IntRange(1, 1000),
              help="Steps per frame. Default: the recorded sampler's, else 20.")
@click.option("--eta", type=click.FloatRange(0.0),
              help="DDIM eta. Default: the recorded sampler's, else 0.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(18),
              help="ONNX opset (18 is the lowest torch's exporter writes).")
@click.option("--frame-index", default="clamp", show_default=True,
              type=click.Choice(["clamp", "extrapolate"]),
              help="Frame code past the training length: hold k at F-2, or keep counting.")
@click.option("--train-frames", type=click.IntRange(2),
              help="F of the official checkpoint's frame code (default 128).")
@click.option("--fp16-weights", is_flag=True,
              help="Round the weights to FP16 first, for the FP32 graphs too: every precision "
                   "then runs the same weights, and FP16 videos stay closer to FP32's.")
@click.option("--fp16-graphs", default="motion", show_default=True,
              help="Denoisers that get an FP16 graph, which --precision fp16 runs; the others "
                   "run FP32 there, as the flow and the update always do. The content model "
                   "runs once per video: in FP16 it saves little, and on the bundled model it "
                   "made more FP16 videos drift from FP32's (bench/RESULTS.md). 'content,motion' "
                   "runs both in FP16.")
@click.option("--fp16-fp32-tail", default=3, show_default=True, type=click.IntRange(0),
              help="The last N convs before the output head (the decoder's last 3x3 convs) stay "
                   "FP32 in the FP16 graphs. Most of FP16's remaining error came from them on "
                   "the bundled model (bench/RESULTS.md); 0 runs them in FP16 too: faster on a "
                   "GPU, more videos drift from FP32's.")
@quiet_option
@user_errors
def export(checkpoint: Path, name: str | None, out_dir: Path, height: int | None,
           width: int | None, frames: int | None, batch: int, sampler: str | None,
           steps: int | None, eta: float | None, opset: int, frame_index: str,
           train_frames: int | None, fp16_weights: bool, fp16_graphs: str, fp16_fp32_tail: int,
           quiet: bool) -> None:
    """Export a checkpoint to ONNX (content, flow, motion, sampler update) and validate it."""
    from contextlib import ExitStack

    from ..atomic import check_replaceable, check_writable, holds
    from ..checkpoint import checkpoint_config
    from ..export import ExportOptions, export_checkpoint
    from ..export.options import export_sampler
    from ..manifest import MANIFEST

    recorded = checkpoint_config(checkpoint, train_frames).sampler
    sampler, steps, eta, spacing = export_sampler(recorded, sampler, steps, eta)
    stem = checkpoint.name.split(".")[0]
    name = name or f"{stem}-{sampler}{steps}"
    check_replaceable(out_dir / name, holds(MANIFEST))
    check_writable(out_dir / name)
    options = ExportOptions(name=name, out_dir=out_dir, batch=batch, frames=frames,
                            sampler=sampler, steps=steps, eta=eta, spacing=spacing, opset=opset,
                            frame_index=frame_index, height=height, width=width,
                            fp16_weights=fp16_weights,
                            fp16_graphs=tuple(g.strip() for g in fp16_graphs.split(",")
                                              if g.strip()),
                            fp16_fp32_tail=fp16_fp32_tail)
    bar = ExitStack()
    advance: list = []  # the bar's advance, once the number of stages is known
    started = [0]

    def stages(total: int) -> None:
        advance.append(bar.enter_context(progress(total, "export", unit="graph", quiet=quiet)))

    def say(message: str) -> None:
        # A terminal shows the running stage as the bar's label; logs get a line per stage.
        if advance and sys.stderr.isatty():
            advance[0](1 if started[0] else 0, message)
        elif not quiet:
            click.echo(message, err=True)
        started[0] += 1

    with bar:
        path, errors = export_checkpoint(checkpoint, options, train_frames=train_frames,
                                         progress=say, stages=stages)
        if advance:
            advance[0](1, "export done")
    for graph, err in errors.items():
        against = "its FP32 graph" if graph.endswith(".fp16") else "PyTorch"
        click.echo(f"{graph:12s} max relative error vs {against} {err:.2e}")
    click.echo(f"wrote {path}")


@click.command()
@click.argument("engine", type=click.Path(path_type=Path))
@click.option("--videos", default=8, show_default=True, type=click.IntRange(1),
              help="Generator runs to record (each one batch of the export's videos).")
@click.option("--frames", type=click.IntRange(2),
              help="Frames per video (default: the export's).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Calibration folder (default: calibration/<export name>).")
@first_frame_option(" Only for exports without a content model: a content model is "
                    "calibrated on the first frames it makes. Give images like those the "
                    "model will start from, and at least as many as --videos x batch.")
@click.option("--fp32-final-steps", default=1, show_default=True, type=click.IntRange(0),
              help="Run each denoiser's last N sampler steps on its FP32 graph. INT8 in the "
                   "last step leaves grain that nothing after it removes (FVD 182 against "
                   "FP32's 145 on the bundled model; 151 with 1). 0: INT8 at every step.")
@quiet_option
@user_errors
def calibrate(engine: Path, videos: int, frames: int | None, seed: int, out: Path | None,
              first_frame: Path | None, fp32_final_steps: int, quiet: bool) -> None:
    """Record real denoiser inputs with the FP32 sampler, then write INT8 QDQ graphs.

    \b
    The recorded inputs go to calibration/<name>/; the INT8 graphs (<graph>.int8.onnx) go into
    the export directory and its manifest, for `--precision int8`, which runs them at every
    sampler step but the last --fp32-final-steps.
    """
    from ..atomic import check_replaceable, check_writable, holds
    from ..export.calibrate import CALIBRATION_JSON, quantize_export, record_calibration
    from ..export.int8 import QuantOptions
    from ..manifest import load_manifest
    from ..video import read_images

    manifest = load_manifest(engine)
    first = None if first_frame is None else read_images(first_frame, manifest.height)
    if first is not None and len(first) < videos * manifest.batch:
        click.echo(f"note: {len(first)} images for {videos * manifest.batch} videos: "
                   "some videos start from the same image (on other noise)", err=True)
    out = out or Path("calibration") / engine.resolve().name
    check_replaceable(out, holds(CALIBRATION_JSON))
    check_writable(out)
    steps = manifest.sampler.steps
    frames_per_run = frames or manifest.default_frames
    total = videos * (frames_per_run - (first is not None)) * steps
    with progress(total, f"recording {videos} x {frames_per_run} frames", quiet=quiet) as advance:
        info = record_calibration(engine, out, videos, seed=seed, frames=frames,
                                  on_step=advance, first_frames=first)
    for graph, samples in info["samples"].items():
        click.echo(f"{graph:8s} {samples['count']} inputs recorded "
                   f"({samples['per_step'][0]} per step)")
    click.echo(f"wrote {out}")
    files = quantize_export(engine, out, QuantOptions(fp32_final_steps=fp32_final_steps),
                            say=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {', '.join(str(engine / f) for f in files.values() if '.int8.' in f)}")


# The quality targets of reduced precision: PSNR vs FP32 on every frame.


@click.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--precision", default="fp16", show_default=True, type=PRECISION_CHOICE,
              help="fp16 and int8 use the export's FP16 / QDQ graphs (vidm-rt export / "
                   "vidm-rt calibrate).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Engine directory (default: engines/<export name>-<precision>).")
@click.option("--workspace", type=click.IntRange(1), help="Builder workspace limit in MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="Timing cache file, read and updated (default: one per TensorRT version and "
                   "GPU in the output's parent folder).")
@click.option("--opt-level", type=click.IntRange(0, 5),
              help="TensorRT builder optimization level (default 3).")
@click.option("--dla-core", type=click.IntRange(0),
              help="Build for this DLA core with GPU fallback (Jetson AGX Orin; fp16/int8).")
@click.option("--device", default="cuda", show_default=True, help="cuda or cuda:N.")
@user_errors
def build(export_dir: Path, precision: str, out: Path | None, workspace: int | None,
          timing_cache: Path | None, opt_level: int | None, dla_core: int | None,
          device: str) -> None:
    """Build TensorRT engines (one plan per graph) from an export directory."""
    from ..build import BuildOptions, build_engines
    from ..runtime.tensorrt_backend import device_index

    options = BuildOptions(precision=precision, out=out, workspace_mb=workspace,
                           timing_cache=timing_cache, opt_level=opt_level, dla_core=dla_core,
                           device=device_index(device))
    path = build_engines(export_dir, options, progress=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {path}")


