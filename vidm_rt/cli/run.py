"""`vidm-rt generate` and `bench`: running an export or engine directory."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import (
    ENGINE_HELP,
    PRECISION_CHOICE,
    default_engine,
    first_frame_option,
    gpu_options,
    precision_list,
    runtime_options,
    scale_option,
)


@click.command()
@click.option("--engine", type=click.Path(path_type=Path),
              help=ENGINE_HELP)
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
@click.option("--out", "outs", multiple=True, type=click.Path(path_type=Path),
              help="video.mp4, video.gif, video.npy or a folder/ of PNG frames (default "
                   "video.gif); repeat to write several.")
@click.option("--grid", type=click.IntRange(1),
              help="Tile the batch's videos into one video, this many columns wide (a 1-pixel "
                   "grey line between them); .npy keeps the videos apart.")
@click.option("--fps", default=8.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--threads", type=click.IntRange(1), help="CPU threads (default: all).")
@click.option("--precision", type=PRECISION_CHOICE,
              help="onnxruntime: the export's graphs to run (fp32 default; fp16 comes with the "
                   "export, int8 from `vidm-rt calibrate`; the CPU EP has no FP16 convolution "
                   "and computes them in FP32, nearly fp32, see `vidm-rt quality --fp16-as`); "
                   "torch: fp16 = FP16 autocast on CUDA; "
                   "tensorrt: the engine's (checked).")
@scale_option
@gpu_options
@quiet_option
@user_errors
def generate(engine: Path | None, backend: str, device: str, frames: int | None, seed: int,
             batch: int | None, first_frame: Path | None, outs: tuple[Path, ...],
             grid: int | None, fps: float, threads: int | None, precision: str | None,
             scale: int, no_cuda_graphs: bool, zero_copy: bool, quiet: bool) -> None:
    """Generate videos from an exported model with the static-schedule runtime."""
    import numpy as np

    from ..runtime import VideoGenerator
    from ..video import check_output, first_frames_for, read_images, tile, write_video

    outs = outs or (Path("video.gif"),)
    for out in outs:
        check_output(out)
    if engine is None:
        engine = default_engine(batch or 1, lambda msg: click.echo(msg, err=True))
    if backend == "tensorrt" and device == "cpu":
        device = "cuda"
    with VideoGenerator(engine, backend=backend, device=device, threads=threads,
                        options=runtime_options(precision, no_cuda_graphs, zero_copy)) as gen:
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
        with progress(steps, f"{frames} frames x {gen.table.steps} steps", quiet=quiet) as advance:
            for frame in gen.generate(frames, seed=seed, first_frame=first, on_step=advance):
                chunks.append(frame)
    videos = np.stack(chunks, axis=1)
    for out in outs:
        shown = videos if grid is None or out.suffix == ".npy" else tile(videos, grid)
        for path in write_video(out, shown, fps=fps, scale=scale):
            click.echo(f"wrote {path}")


@click.command()
@click.option("--engine", type=click.Path(path_type=Path),
              help=ENGINE_HELP)
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

    from ..atomic import check_writable, write_text
    from ..bench import BenchTarget, format_table, run_bench

    if json_path is not None:
        check_writable(json_path)
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
    click.echo("note: only ratios measured in one run compare; absolute times move with the "
               "machine's load and clocks")
    if json_path is not None:
        write_text(json_path, json.dumps(report, indent=2))
        click.echo(f"wrote {json_path}")


