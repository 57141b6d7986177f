"""`vidm-rt eval`: FVD of sample sets against real videos."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import PRECISION_CHOICE, SAMPLER_CHOICE, default_engine

# Real moving-shapes clips for comparisons: a seed neither training nor the bench draws.
REAL_SHAPES = "shapes"


def _seeds(value: str) -> list[int]:
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds {value!r}: give a comma-separated list of seeds, e.g. 0,1,2")
    return seeds


@click.command("eval")
@click.option("--fake", "fakes", multiple=True, type=click.Path(path_type=Path),
              help="A sample set: a folder of videos (.mp4/.gif files or folders of PNG frames) "
                   "or a .npy stack (N, T, 3, H, W) in [-1, 1] as `generate --batch` writes. "
                   "Repeat for several sets. Without it, sets are generated (--engine).")
@click.option("--engine", type=click.Path(path_type=Path),
              help="Generate the sample sets from this export, one per --seeds (default: the "
                   "bundled model).")
@click.option("--backend", default="onnxruntime", show_default=True,
              type=click.Choice(["onnxruntime", "torch"]))
@click.option("--precision", default="fp32", show_default=True, type=PRECISION_CHOICE,
              help="Graphs to generate with; fp16 on onnxruntime is rounded as an FP16 engine "
                   "computes it.")
@click.option("--sampler", type=SAMPLER_CHOICE, help="Sampler (default: the export's).")
@click.option("--steps", type=click.IntRange(1, 1000), help="Steps (default: the export's).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="One generated sample set per seed (mean and spread over them).")
@click.option("--videos", default=256, show_default=True, type=click.IntRange(1),
              help="Videos per generated set.")
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1),
              help="Batch of the bundled model's export (ignored with --engine).")
@click.option("--real", default=REAL_SHAPES, show_default=True,
              help="The real set: 'shapes' (moving-shapes clips at the sample sets' size and "
                   "length) or a folder / .npy stack as for --fake.")
@click.option("--real-videos", default=2048, show_default=True, type=click.IntRange(2),
              help="Clips in the real set with --real shapes.")
@click.option("--frames", default=16, show_default=True, type=click.IntRange(3),
              help="Frames per video; shorter videos are used whole.")
@click.option("--extractor", type=click.Choice(["objects", "shipped", "i3d"]),
              help="objects (default against --real shapes): the shipped statistics plus 14 "
                   "object-physics numbers per video (shapes found and followed: appear, "
                   "vanish, kind, colour, size, jump). shipped (default against a --real "
                   "folder or stack): vidm-rt's offline extractor, 47 "
                   "hand-designed statistics of appearance, change over time and block motion "
                   "in units of their spread on real moving shapes (blind to a shape that pops "
                   "in or changes kind). i3d (the default when --i3d is given): FVD as the "
                   "VIDM authors compute it, StyleGAN-V's I3D detector on frames resized "
                   "bicubic to --i3d-resolution; comparable with published FVD.")
@click.option("--i3d", "i3d_path", type=click.Path(path_type=Path),
              help="StyleGAN-V's I3D TorchScript file (i3d_torchscript.pt); never downloaded.")
@click.option("--i3d-resolution", default=256, show_default=True, type=click.IntRange(8))
@click.option("--i3d-batch", default=32, show_default=True, type=click.IntRange(1),
              help="I3D batch; as in the authors' script a last partial batch is left out.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads (default: all).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (and the plot next to it as .png).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG plot of FVD per sample set (default: next to --json).")
@quiet_option
@user_errors
def eval_command(fakes: tuple[Path, ...], engine: Path | None, backend: str, precision: str,
                 sampler: str | None, steps: int | None, seeds: str, videos: int, batch: int,
                 real: str, real_videos: int, frames: int, extractor: str | None,
                 i3d_path: Path | None, i3d_resolution: int, i3d_batch: int,
                 threads: int | None, json_path: Path | None, plot: Path | None,
                 quiet: bool) -> None:
    """FVD of sample sets against real videos, with mean and spread over the sets, and
    on moving shapes the object failures of every set beside the real set's.

    \b
    Object failures (share of videos, with a 95% interval): a shape appears that was
    not in frame 0, one of frame 0 is gone at the end (an occlusion is not a vanish),
    a shape changes kind (square/disc), colour or size, or jumps (lands where no
    velocity or bounce puts it); intact = none of the first five. Sets that are not
    moving shapes get a note instead.
    \b
    Feature extractors (--extractor):
      objects  the default against --real shapes: shipped + 14 object-physics
               numbers per video, so FVD also rises when shapes pop in, vanish or
               change; meaningful on moving shapes only.
      shipped  offline, in the package: 47 statistics of each video (colour, sharpness,
               noise floor, frame differences at several lags, block motion and how
               smoothly it changes), each in units of its spread on real moving shapes.
               Made for the bundled domain; its FVD rises with noise, blur, shuffled or
               frozen frames, jitter, contrast and colour loss (bench/RESULTS.md).
               Not comparable with published FVD.
      i3d      the VIDM authors' FVD: StyleGAN-V's I3D detector (--i3d PATH, supplied by
               you, never downloaded), frames resized with PIL bicubic, scaled to [0, 1],
               called with rescale=False, resize=True, return_features=True.
    A set needs one video more than the extractor has features: 62 (objects), 48
    (shipped), 401 (i3d)."""
    from ..eval.report import (
        fvd_report,
        generated_set,
        object_lines,
        object_reports,
        plot_fvd,
        set_stats,
    )
    from ..eval.shapes import REAL_CLIPS_SEED
    from ..eval.videos import moving_shapes_set, read_video_set

    seed_list = _seeds(seeds)
    if fakes and engine is not None:
        raise ValueError("give sample sets with --fake or an export to generate them from "
                         "with --engine, not both")
    kind = extractor or ("i3d" if i3d_path else "objects" if real == REAL_SHAPES else "shipped")
    if kind == "i3d":
        if i3d_path is None:
            raise ValueError("--extractor i3d needs --i3d PATH: StyleGAN-V's "
                             "i3d_torchscript.pt (vidm-rt never downloads it)")
        from ..eval.i3d import I3DFeatures

        ex = I3DFeatures(i3d_path, i3d_resolution, i3d_batch)
    elif kind == "shipped":
        from ..eval.features import ShippedFeatures

        ex = ShippedFeatures()
    else:
        from ..eval.object_features import ObjectFeatures

        ex = ObjectFeatures()
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))

    samples = []
    for path in fakes:
        s = read_video_set(path, frames)
        with progress(len(s), f"features of {path}", unit="video", quiet=quiet) as advance:
            samples.append((s, set_stats(s, ex, advance)))
    if not fakes:
        from ..manifest import load_manifest
        from ..schedule import sampler_table

        engine = engine or default_engine(batch, say)
        exported = load_manifest(engine).sampler
        table = (sampler_table(sampler or exported.sampler, steps or exported.steps,
                               clip_x0=exported.clip_x0) if sampler or steps else None)
        for seed in seed_list:
            with progress(videos * frames * (steps or exported.steps),
                          f"seed {seed}: {videos} videos", quiet=quiet) as advance:
                s = generated_set(engine, videos, frames, seed, backend, precision, table,
                                  threads, on_step=advance)
            samples.append((s, set_stats(s, ex)))
    size = samples[0][0].videos.shape[2]
    length = min(s.frames for s, _ in samples)
    real_set = (moving_shapes_set(real_videos, length, size, seed=REAL_CLIPS_SEED)
                if real == REAL_SHAPES else read_video_set(real, frames))
    with progress(len(real_set), "features of the real set", unit="video",
                  quiet=quiet) as advance:
        real_stats = set_stats(real_set, ex, advance)
    report = fvd_report(real_set, samples, real_stats, ex)
    report["objects"] = object_reports(real_set, [s for s, _ in samples], ex)
    report["objects"]["real"].pop("per_video", None)
    for row in report["sets"]:
        click.echo(f"FVD {row['fvd']:9.2f}  {row['source']} ({row['videos']} videos, "
                   f"{row['frames']} frames)")
    fvd = report["fvd"]
    click.echo(f"FVD {fvd['mean']:.2f} +- {fvd['std']:.2f} (mean and std over "
               f"{len(report['sets'])} sets; {kind} extractor, real: {report['real']['source']}, "
               f"{report['real']['videos']} videos)")
    for line in object_lines(report["objects"]):
        click.echo(line)
    from ..atomic import atomic_write

    if json_path is not None:
        with atomic_write(json_path) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
        click.echo(f"wrote {json_path}")
        plot = plot or json_path.with_suffix(".png")
    if plot is not None:
        with atomic_write(plot) as tmp:
            plot_fvd(report, tmp)
        click.echo(f"wrote {plot}")
