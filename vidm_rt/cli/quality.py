"""`vidm-rt quality`: reduced-precision graphs against FP32 on identical noise."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import SAMPLER_CHOICE, first_frame_option, precision_list


@click.command()
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
@quiet_option
@user_errors
def quality(engine: Path, precisions: str, videos: int, frames: int, seed: int,
            sampler: str | None, steps: int | None, threads: int | None, teacher_forced: bool,
            fp16_as: str, out: Path | None, first_frame: Path | None, quiet: bool) -> None:
    """PSNR per frame of fp16/int8 against fp32 on identical noise, and the shapes check.

    Every precision generates the same videos from the same noise; the PSNR of each frame
    against fp32 shows how far the video has drifted by then. The teacher-forced PSNR shows
    the error of the precision itself on each frame (see --teacher-forced)."""
    import json

    from ..atomic import atomic_write, check_replaceable, check_writable, holds
    from ..eval.precision import PARITY_DB, compare_precisions, plot_psnr
    from ..manifest import load_manifest
    from ..schedule import sampler_table
    from ..video import read_images

    wanted = precision_list(precisions)
    manifest = load_manifest(engine)
    first = None if first_frame is None else read_images(first_frame, manifest.height)
    exported = manifest.sampler
    table = None
    if sampler or steps:
        table = sampler_table(sampler or exported.sampler, steps or exported.steps,
                              clip_x0=exported.clip_x0)
    elif exported.uses_noise:
        click.echo(f"note: the export's sampler ({exported.sampler}) adds noise at every step; "
                   "the noise is identical across precisions, but pass --sampler ddim for a "
                   "deterministic comparison", err=True)
    out = out or Path("quality") / engine.resolve().name
    check_replaceable(out, holds("quality.json"))
    check_writable(out)
    lower = len(set(wanted) - {"fp32"})
    runs = 1 + lower * (2 if teacher_forced else 1)
    made = frames - (first is not None)  # frames each run denoises
    denoised = videos * (steps or exported.steps) * (
        (1 + lower) * made + (lower * (frames - 1) if teacher_forced else 0))
    with progress(denoised, f"{runs} runs x {videos} videos x {frames} frames",
                  quiet=quiet) as advance:
        report = compare_precisions(engine, wanted, videos, frames, seed, table, threads,
                                    on_step=advance,
                                    teacher_forced=teacher_forced, fp16_as=fp16_as,
                                    first_frames=first)
    with atomic_write(out, directory=True, ours=holds("quality.json")) as tmp:
        (tmp / "quality.json").write_text(json.dumps(report, indent=2))
        plot_psnr(report, tmp / "psnr.png", {p: PARITY_DB[p] for p in wanted if p in PARITY_DB})
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


