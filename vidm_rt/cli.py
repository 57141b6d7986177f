"""`vidm-rt`: the command-line entry point.

Commands import their heavy dependencies (torch) inside the command, so `vidm-rt --help` and the
runtime commands work on a runtime-only install.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__

SAMPLER_CHOICE = click.Choice(["ancestral", "ddim", "dpmpp2m"])
PRECISION_CHOICE = click.Choice(["fp32", "fp16", "int8"])
# Trained by the project on moving shapes; vidm_rt/assets/README.md has the exact command.
BUNDLED_MODEL = Path(__file__).parent / "assets" / "demo-tiny.safetensors"


def precision_list(value: str) -> list[str]:
    """Parse a comma-separated --precision list, or fail naming the valid ones."""
    wanted = [p.strip() for p in value.split(",") if p.strip()]
    if not wanted or any(p not in PRECISION_CHOICE.choices for p in wanted):
        raise ValueError(f"--precision {value!r}: give a comma-separated list of "
                         f"{', '.join(PRECISION_CHOICE.choices)}")
    return wanted


def first_frame_option(note: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--first-frame (also spelled --first-frames): the images image-to-video starts from."""
    return click.option(
        "--first-frame", "--first-frames", "first_frame", type=click.Path(path_type=Path),
        help="Image-to-video: start the videos from images instead of the content model "
             "(required for a model without one, like the released checkpoint). One image "
             "(PNG/JPEG, or .npy (3, H, W) in [-1, 1]), a folder of them, or a .npy stack "
             f"(N, 3, H, W); video v starts from image v mod N.{note}")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the package's user-facing errors into one line and exit status 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ImportError as e:
            missing = e.name or str(e)
            top = missing.split(".")[0]
            extra = ("torch" if top in {"torch", "safetensors", "onnx"}
                     else "gpu" if top in {"tensorrt", "cuda"} else "cpu")
            click.echo(
                f"error: this command needs {missing}: pip install 'vidm-rt[{extra}]' "
                "(for torch, install torch==2.13.0 first on CPU-only machines)",
                err=True,
            )
        except (ValueError, OSError) as e:
            click.echo(f"error: {e}", err=True)
        sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidm-rt")
def main() -> None:
    """vidm-rt: deploy VIDM video diffusion (content + motion generators).

    \b
    Typical flow:
      vidm-rt generate --out demo.gif                  the bundled demo model
      vidm-rt train --preset tiny --out runs/tiny      train on moving shapes
      vidm-rt export runs/tiny/model.safetensors       ONNX graphs + manifest in export/
      vidm-rt generate --engine export/NAME --out video.mp4
      vidm-rt calibrate export/NAME                    INT8 graphs (--precision int8)
      vidm-rt quality export/NAME                      fp16/int8 vs fp32: PSNR per frame
      vidm-rt bench --engine export/NAME               time backends vs the reference loop
      vidm-rt import-official CKPT --out model.safetensors
    """


@main.command()
@click.option("--ckpt", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint (.safetensors, .pt, or the official VIDM release). "
                   "Default: the bundled demo model.")
@click.option("--preset",
              help="Instead of a checkpoint, an untrained model of this preset (tiny, small, "
                   "clevrer128): a smoke test.")
@click.option("--frames", default=8, show_default=True, type=click.IntRange(1),
              help="Frames per video, the first (content) frame included.")
@click.option("--sampler", default="dpmpp2m", show_default=True, type=SAMPLER_CHOICE,
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
@user_errors
def sample(ckpt: Path | None, preset: str | None, frames: int, sampler: str, steps: int, eta: float,
           seed: int, batch: int, first_frame: Path | None, reference_loop: bool,
           train_frames: int | None, out: Path, fps: float) -> None:
    """Generate videos with the PyTorch reference sampler."""
    import numpy as np
    import torch

    from .checkpoint import load_checkpoint
    from .config import preset as get_preset
    from .models import ContentModel, MotionModel
    from .reference import sample_video
    from .schedule import sampler_table
    from .video import first_frames_for, output_kind, read_images, write_video

    output_kind(out)  # reject an unknown format before any work
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
                          batch=batch, recompute_flow=reference_loop)
    with click.progressbar(stream, length=frames, label=f"{cfg.name} {sampler} x{steps}",
                           file=sys.stderr, show_pos=True) as bar:
        for frame in bar:
            frames_out.append(frame.cpu().numpy())
    video = np.stack(frames_out, axis=1)
    for path in write_video(out, video, fps=fps):
        click.echo(f"wrote {path}")


@main.command("import-official")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the vidm-rt checkpoint (.safetensors).")
@click.option("--train-frames", default=128, show_default=True, type=click.IntRange(2),
              help="F of the frame code k~ = -1 + 2k/(F-1); the release was trained with 128.")
@click.option("--raw", is_flag=True, help="Import the raw weights instead of the EMA weights.")
@user_errors
def import_official(checkpoint: Path, out: Path, train_frames: int, raw: bool) -> None:
    """Convert the released VIDM motion checkpoint (.pth.tar) to a vidm-rt checkpoint."""
    from .checkpoint import CheckpointError, save_checkpoint
    from .models.official import load_official_motion

    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint file")
    if out.suffix != ".safetensors":
        raise CheckpointError(f"{out}: the output must be a .safetensors file")
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


def _cache_dir() -> Path:
    base = os.environ.get("VIDM_RT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "vidm-rt")
    return Path(base)


def default_engine(batch: int, say: Callable[[str], None]) -> Path:
    """The bundled demo model, exported once per batch size and export revision into the cache
    folder."""
    from .export import EXPORT_REVISION
    from .manifest import ManifestError, load_manifest, sha256_file

    if not BUNDLED_MODEL.is_file():
        raise ValueError("no bundled model in this installation: pass --engine DIR "
                         "(create one with `vidm-rt export CKPT`)")
    name = f"demo-tiny-b{batch}-{sha256_file(BUNDLED_MODEL)[:12]}-r{EXPORT_REVISION}"
    engine = _cache_dir() / name
    try:
        load_manifest(engine)
        return engine
    except ManifestError:
        pass
    from .export import ExportOptions, export_checkpoint

    say(f"exporting the bundled model once into {engine} ...")
    export_checkpoint(BUNDLED_MODEL, ExportOptions(name=name, out_dir=engine.parent, batch=batch,
                                                   frames=16), progress=say)
    return engine


@main.command()
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
@click.option("--sampler", default="dpmpp2m", show_default=True, type=SAMPLER_CHOICE)
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--eta", default=0.0, show_default=True, type=click.FloatRange(0.0),
              help="DDIM eta.")
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
@user_errors
def export(checkpoint: Path, name: str | None, out_dir: Path, height: int | None,
           width: int | None, frames: int | None, batch: int, sampler: str, steps: int,
           eta: float, opset: int, frame_index: str, train_frames: int | None,
           fp16_weights: bool, fp16_graphs: str, fp16_fp32_tail: int) -> None:
    """Export a checkpoint to ONNX (content, flow, motion, sampler update) and validate it."""
    from .export import ExportOptions, export_checkpoint

    stem = checkpoint.name.split(".")[0]
    name = name or f"{stem}-{sampler}{steps}"
    options = ExportOptions(name=name, out_dir=out_dir, batch=batch, frames=frames,
                            sampler=sampler, steps=steps, eta=eta, opset=opset,
                            frame_index=frame_index, height=height, width=width,
                            fp16_weights=fp16_weights,
                            fp16_graphs=tuple(g.strip() for g in fp16_graphs.split(",")
                                              if g.strip()),
                            fp16_fp32_tail=fp16_fp32_tail)
    path, errors = export_checkpoint(checkpoint, options, train_frames=train_frames,
                                     progress=lambda msg: click.echo(msg, err=True))
    for graph, err in errors.items():
        against = "its FP32 graph" if graph.endswith(".fp16") else "PyTorch"
        click.echo(f"{graph:12s} max relative error vs {against} {err:.2e}")
    click.echo(f"wrote {path}")


@main.command()
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
    from .build import BuildOptions, build_engines
    from .runtime.tensorrt_backend import device_index

    options = BuildOptions(precision=precision, out=out, workspace_mb=workspace,
                           timing_cache=timing_cache, opt_level=opt_level, dla_core=dla_core,
                           device=device_index(device))
    path = build_engines(export_dir, options, progress=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {path}")


def runtime_options(precision: str | None, no_cuda_graphs: bool, zero_copy: bool) -> Any:
    from .runtime import RuntimeOptions

    return RuntimeOptions(precision=precision, cuda_graphs=not no_cuda_graphs,
                          zero_copy=zero_copy)


def gpu_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the GPU backends, shared by generate and bench."""
    fn = click.option("--zero-copy", is_flag=True,
                      help="tensorrt: host-visible buffers in mapped host memory (Jetson).")(fn)
    return click.option("--no-cuda-graphs", is_flag=True,
                        help="Launch every graph eagerly instead of replaying a captured "
                             "frame.")(fn)


@main.command()
@click.option("--engine", type=click.Path(path_type=Path),
              help="Export or engine directory (default: the bundled demo model).")
@click.option("--backend", default="onnxruntime", show_default=True,
              type=click.Choice(["onnxruntime", "torch", "tensorrt"]),
              help="tensorrt needs an engine directory from `vidm-rt build`.")
@click.option("--device", default="cpu", show_default=True,
              help="cpu or cuda[:N] (tensorrt: default cuda).")
@click.option("--frames", type=click.IntRange(1), help="Frames per video (default: the export's).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1))
@click.option("--batch", type=click.IntRange(1),
              help="Videos per run; must match the engine's (default: the engine's).")
@first_frame_option()
@click.option("--out", default="video.gif", show_default=True, type=click.Path(path_type=Path),
              help="video.mp4, video.gif, video.npy or a folder/ of PNG frames.")
@click.option("--fps", default=8.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--threads", type=click.IntRange(1), help="CPU threads (default: all).")
@click.option("--precision", type=PRECISION_CHOICE,
              help="onnxruntime: the export's graphs to run (fp32 default; fp16 comes with the "
                   "export, int8 from `vidm-rt calibrate`; the CPU EP has no FP16 convolution "
                   "and computes them in FP32, nearly fp32, see `vidm-rt quality --fp16-as`); "
                   "torch: fp16 = FP16 autocast on CUDA; "
                   "tensorrt: the engine's (checked).")
@gpu_options
@user_errors
def generate(engine: Path | None, backend: str, device: str, frames: int | None, seed: int,
             batch: int | None, first_frame: Path | None, out: Path, fps: float,
             threads: int | None, precision: str | None, no_cuda_graphs: bool,
             zero_copy: bool) -> None:
    """Generate videos from an exported model with the static-schedule runtime."""
    import numpy as np

    from .runtime import VideoGenerator
    from .video import first_frames_for, output_kind, read_images, write_video

    output_kind(out)
    if engine is None:
        engine = default_engine(batch or 1, lambda msg: click.echo(msg, err=True))
    if backend == "tensorrt" and device == "cpu":
        device = "cuda"
    gen = VideoGenerator(engine, backend=backend, device=device, threads=threads,
                         options=runtime_options(precision, no_cuda_graphs, zero_copy))
    if batch is not None and batch != gen.batch:
        raise ValueError(f"{engine} was exported for batch {gen.batch}: export again with "
                         f"--batch {batch}, or leave --batch out")
    first = None
    if first_frame is not None:
        first = first_frames_for(read_images(first_frame, gen.height), 0, gen.batch)
        if first.shape[1:] != gen.image_shape:
            raise ValueError(f"{first_frame}: needs images of shape {gen.image_shape}, "
                             f"got {first.shape[1:]}")
    frames = frames or gen.default_frames
    steps = frames * gen.table.steps - (gen.table.steps if first is not None else 0)
    chunks = []
    with click.progressbar(length=steps, label=f"{frames} frames x {gen.table.steps} steps",
                           file=sys.stderr) as bar:
        for frame in gen.generate(frames, seed=seed, first_frame=first,
                                  on_step=lambda: bar.update(1)):
            chunks.append(frame)
    for path in write_video(out, np.stack(chunks, axis=1), fps=fps):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--engine", type=click.Path(path_type=Path),
              help="Export or engine directory (default: the bundled demo model).")
@click.option("--backends", default="onnxruntime,torch", show_default=True,
              help="Comma-separated backends to time.")
@click.option("--frames", default=6, show_default=True, type=click.IntRange(2))
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(0))
@click.option("--reference-steps", default=100, show_default=True, type=click.IntRange(0),
              help="Steps of the reference loop (ancestral, flow every step); 0 skips it.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for every backend.")
@click.option("--device", default="cpu", show_default=True,
              help="cpu or cuda[:N]: for every backend and the reference loop (tensorrt: cuda).")
@click.option("--trt-engine", type=click.Path(path_type=Path),
              help="Engine directory from `vidm-rt build` for the tensorrt backend.")
@click.option("--precision", "precisions", default="fp32", show_default=True,
              help="Comma-separated precisions (fp32, fp16, int8): onnxruntime times each; "
                   "torch runs fp32, and fp16 autocast on CUDA; tensorrt the engine's.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JSON.")
@gpu_options
@user_errors
def bench(engine: Path | None, backends: str, frames: int, repeats: int, warmup: int,
          reference_steps: int, threads: int | None, device: str, trt_engine: Path | None,
          precisions: str, json_path: Path | None, no_cuda_graphs: bool,
          zero_copy: bool) -> None:
    """Time one video on each backend and on the reference's own loop, in one run."""
    import json

    from .bench import BenchTarget, format_table, run_bench

    if engine is None:
        engine = default_engine(1, lambda msg: click.echo(msg, err=True))
    names = [b.strip() for b in backends.split(",") if b.strip()]
    if "tensorrt" in names and trt_engine is None:
        raise ValueError("--backends tensorrt needs --trt-engine DIR (from `vidm-rt build`)")
    target = BenchTarget(device=device, trt_engine=trt_engine,
                         options=runtime_options(None, no_cuda_graphs, zero_copy))
    report = run_bench(engine, names, frames, repeats, warmup, reference_steps, threads,
                       log=lambda msg: click.echo(msg, err=True), target=target,
                       precisions=precision_list(precisions))
    click.echo(format_table(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        click.echo(f"wrote {json_path}")


@main.command()
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
@user_errors
def calibrate(engine: Path, videos: int, frames: int | None, seed: int, out: Path | None,
              first_frame: Path | None) -> None:
    """Record real denoiser inputs with the FP32 sampler, then write INT8 QDQ graphs.

    \b
    The recorded inputs go to calibration/<name>/; the INT8 graphs (<graph>.int8.onnx) go into
    the export directory and its manifest, for `--precision int8`.
    """
    from .calibrate import quantize_export, record_calibration
    from .manifest import load_manifest
    from .video import read_images

    manifest = load_manifest(engine)
    first = None if first_frame is None else read_images(first_frame, int(manifest["height"]))
    if first is not None and len(first) < videos * int(manifest["batch"]):
        click.echo(f"note: {len(first)} images for {videos * int(manifest['batch'])} videos: "
                   "some videos start from the same image (on other noise)", err=True)
    out = out or Path("calibration") / engine.resolve().name
    steps = manifest["sampler"]["steps"]
    frames_per_run = frames or int(manifest.get("frames", manifest["config"]["train_frames"]))
    total = videos * (frames_per_run - (first is not None)) * steps
    with click.progressbar(length=total, label=f"recording {videos} x {frames_per_run} frames",
                           file=sys.stderr) as bar:
        info = record_calibration(engine, out, videos, seed=seed, frames=frames,
                                  on_step=lambda: bar.update(1), first_frames=first)
    for graph, samples in info["samples"].items():
        click.echo(f"{graph:8s} {samples['count']} inputs recorded "
                   f"({samples['per_step'][0]} per step)")
    click.echo(f"wrote {out}")
    files = quantize_export(engine, out, say=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {', '.join(str(engine / f) for f in files.values() if '.int8.' in f)}")


# The quality targets of reduced precision: PSNR vs FP32 on every frame.
PSNR_TARGETS = {"fp16": 35.0, "int8": 25.0}


@main.command()
@click.argument("engine", type=click.Path(path_type=Path))
@click.option("--precision", "precisions", default="fp16,int8", show_default=True,
              help="Comma-separated precisions to compare with fp32.")
@click.option("--videos", default=16, show_default=True, type=click.IntRange(1))
@click.option("--frames", default=16, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1))
@click.option("--sampler", type=SAMPLER_CHOICE,
              help="Sampler for every precision (default: the export's). ddim with eta 0 and "
                   "dpmpp2m are deterministic.")
@click.option("--steps", type=click.IntRange(1, 1000), help="Steps (default: the export's).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads (default: all).")
@click.option("--teacher-forced/--no-teacher-forced", default=True, show_default=True,
              help="Also generate every motion frame from fp32's previous frames: the PSNR of "
                   "one autoregressive step, without the drift that builds up along the video "
                   "(the motion frames once more per precision).")
@click.option("--fp16-as", type=click.Choice(["engine", "onnxruntime"]), default="engine",
              show_default=True,
              help="engine: round every FP16 tensor to FP16, as an FP16 engine (TensorRT) does; "
                   "onnxruntime: run the FP16 graphs as ONNX Runtime's CPU EP does, which "
                   "computes the FP16 ops it has no kernel for (convolutions among them) in "
                   "FP32 and skips their rounding (nearly fp32, far closer than an FP16 "
                   "engine). engine needs the onnx package.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder: quality.json and psnr.png (default: quality/<export name>).")
@first_frame_option(" Every precision starts from the same images; frames 1 on are compared "
                    "and the moving-shapes check is left out. Use other images than the "
                    "calibration's.")
@user_errors
def quality(engine: Path, precisions: str, videos: int, frames: int, seed: int,
            sampler: str | None, steps: int | None, threads: int | None, teacher_forced: bool,
            fp16_as: str, out: Path | None, first_frame: Path | None) -> None:
    """PSNR per frame of fp16/int8 against fp32 on identical noise, and the shapes check.

    Every precision generates the same videos from the same noise; the PSNR of each frame
    against fp32 shows how far the video has drifted by then. The teacher-forced PSNR shows
    the error of the precision itself on each frame (see --teacher-forced)."""
    import json
    import shutil
    import tempfile

    from .manifest import load_manifest, publish_directory
    from .precision_quality import compare_precisions, plot_psnr
    from .schedule import SamplerTable, sampler_table
    from .video import read_images

    wanted = precision_list(precisions)
    manifest = load_manifest(engine)
    first = None if first_frame is None else read_images(first_frame, int(manifest["height"]))
    exported = SamplerTable.from_dict(manifest["sampler"])
    table = None
    if sampler or steps:
        table = sampler_table(sampler or exported.sampler, steps or exported.steps,
                              clip_x0=exported.clip_x0)
    elif exported.uses_noise:
        click.echo(f"note: the export's sampler ({exported.sampler}) adds noise at every step; "
                   "the noise is identical across precisions, but pass --sampler ddim for a "
                   "deterministic comparison", err=True)
    out = out or Path("quality") / engine.resolve().name
    lower = len(set(wanted) - {"fp32"})
    runs = 1 + lower * (2 if teacher_forced else 1)
    made = frames - (first is not None)  # frames each run denoises
    denoised = videos * (steps or exported.steps) * (
        (1 + lower) * made + (lower * (frames - 1) if teacher_forced else 0))
    with click.progressbar(length=denoised,
                           label=f"{runs} runs x {videos} videos x {frames} frames",
                           file=sys.stderr) as bar:
        report = compare_precisions(engine, wanted, videos, frames, seed, table, threads,
                                    on_step=lambda: bar.update(1),
                                    teacher_forced=teacher_forced, fp16_as=fp16_as,
                                    first_frames=first)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "quality.json").write_text(json.dumps(report, indent=2))
        plot_psnr(report, tmp / "psnr.png", {p: PSNR_TARGETS[p] for p in wanted
                                             if p in PSNR_TARGETS})
        publish_directory(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shapes = first is None
    click.echo(f"{'precision':9s} {'min dB':>7s} {'mean dB':>7s} {'diverged':>8s} "
               f"{'tf min dB':>9s}" + (f" {'bg frac':>7s} {'blobs':>6s} {'disp ratio':>10s} "
                                       f"{'in range':>8s} shapes" if shapes else ""))
    if shapes:
        real = report["results"]["fp32"]["shapes"]["real"]
        click.echo(f"{'real':9s} {'':>7s} {'':>7s} {'':>8s} {'':>9s} "
                   f"{real['background_fraction']:7.3f} {real['blobs_per_frame']:6.2f}")
    for p, row in report["results"].items():
        psnr = (f"{row['min_psnr']:7.2f} {row['mean_psnr']:7.2f} "
                f"{str(row['diverged_videos'][-1]) + '/' + str(videos):>8s}" if "min_psnr" in row
                else f"{'-':>7s} {'-':>7s} {'-':>8s}")
        forced = (f"{row['teacher_forced_min_psnr']:9.2f}" if "teacher_forced_min_psnr" in row
                  else f"{'-':>9s}")
        line = f"{p:9s} {psnr} {forced}"
        if shapes:
            s, g = row["shapes"], row["shapes"]["generated"]
            line += (f" {g['background_fraction']:7.3f} {g['blobs_per_frame']:6.2f} "
                     f"{s['displacement_ratio']:10.2f} {s['frames_in_range']:8.2f} "
                     f"{'passed' if s['passed'] else 'failed'}")
        click.echo(line)
    if not shapes:
        click.echo(f"frames 1-{frames - 1} compared: every precision starts from the "
                   f"{len(first)} given image(s); no moving-shapes check")
    click.echo(f"diverged: videos whose PSNR vs fp32 fell below {report['diverged_db']:.0f} dB "
               "on some frame (its shapes moved, not a noisier copy)")
    if "fp16" in report["results"]:
        click.echo("fp16: every FP16 tensor rounded, as an FP16 engine computes it"
                   if fp16_as == "engine" else
                   "fp16: as ONNX Runtime's CPU EP runs the graph (most FP16 ops unrounded)")
    if teacher_forced:
        click.echo("tf: teacher-forced, every motion frame from fp32's previous frames "
                   "(the precision's own error per frame)")
    click.echo(f"wrote {out / 'quality.json'}, {out / 'psnr.png'}")


@main.command()
@click.argument("what")
@user_errors
def info(what: str) -> None:
    """Describe a checkpoint, an export/engine directory, or a preset: config and sizes."""
    from .config import PRESETS, preset

    if Path(what).is_dir():
        import json

        from .manifest import load_manifest

        manifest = load_manifest(what)
        click.echo(json.dumps({k: v for k, v in manifest.items() if k != "sampler"}, indent=2))
        table = manifest["sampler"]
        click.echo(f"sampler: {table['sampler']}, {table['steps']} steps, spacing "
                   f"{table['spacing']}, eta {table['eta']}")
        return

    if what in PRESETS and not Path(what).exists():
        import torch

        from .models import ContentModel, MotionModel

        cfg = preset(what)
        with torch.device("meta"):
            content, motion = ContentModel(cfg), MotionModel(cfg)
    else:
        from .checkpoint import load_checkpoint

        loaded = load_checkpoint(what)
        cfg, content, motion = loaded.config, loaded.content, loaded.motion
    click.echo(cfg.to_json())
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


def _register_train() -> None:
    from .train import train_command  # light: the training code imports torch when it runs

    main.add_command(train_command)


_register_train()


if __name__ == "__main__":
    main()
