"""`vidm-rt eval`'s report: FVD of one or more sample sets against one real set, and on the
bundled domain the object failures of each set beside the real set's (vidm_rt.eval.tracker).

The real set's statistics are computed once; every sample set (a folder, a .npy stack, or videos
generated from an export with one seed) gets its FVD against them, and the sets together give a
mean and spread (the sample standard deviation over sets: how much FVD moves between sample sets
of this size, the band a verdict must use).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..video import to_uint8
from .fvd import Extractor, FeatureStats, default_method, frechet_distance, spread
from .videos import VideoSet

if TYPE_CHECKING:
    from ..schedule import SamplerTable


def generated_set(export_dir: Path, videos: int, frames: int, seed: int,
                  backend: str = "onnxruntime", precision: str = "fp32",
                  table: SamplerTable | None = None, threads: int | None = None,
                  on_step: Callable[[], None] | None = None) -> VideoSet:
    """`videos` videos generated from the export with `seed` (FP16 on onnxruntime rounded as an
    FP16 engine computes it, as `vidm-rt quality` measures it)."""
    from ..runtime import RuntimeOptions, VideoGenerator
    from .precision import generate_videos, precision_generator

    if backend == "onnxruntime":
        gen = precision_generator(export_dir, precision, table, threads)
    else:
        gen = VideoGenerator(export_dir, backend=backend, threads=threads, table=table,
                             options=RuntimeOptions(precision=precision))
    with gen:
        clips = generate_videos(gen, videos, frames, seed, on_step)
    return VideoSet(to_uint8(clips), f"{export_dir} {backend} {precision} "
                    f"{gen.table.sampler}x{gen.table.steps} seed {seed}")


def set_stats(videos: VideoSet, extractor: Extractor,
              on_videos: Callable[[int], None] | None = None) -> FeatureStats:
    """One set's feature statistics; too few videos for its covariance names the set."""
    feats = extractor.features(videos.videos, on_videos)
    try:
        return FeatureStats.of(feats)
    except ValueError as e:
        raise ValueError(f"{videos.source}: {e}") from None


def fvd_report(real: VideoSet, samples: list[tuple[VideoSet, FeatureStats]],
               real_stats: FeatureStats, extractor: Extractor,
               method: str | None = None) -> dict[str, Any]:
    """The JSON report: every sample set's FVD against the real set, and their spread."""
    method = method or default_method()
    rows = [{"source": s.source, "videos": stats.count, "frames": s.frames,
             "fvd": frechet_distance(stats, real_stats, method)} for s, stats in samples]
    return {"extractor": extractor.describe(), "method": method,
            "real": {"source": real.source, "videos": real_stats.count, "frames": real.frames},
            "sets": rows, "fvd": spread([r["fvd"] for r in rows]).to_dict()}


def plot_fvd(report: dict[str, Any], path: Path) -> Path:
    """FVD per sample set with the mean (and, over several sets, mean + 2 std) as guides."""
    from .plot import line_plot_png

    fvd = report["fvd"]
    guides = {"mean": fvd["mean"]}
    if len(report["sets"]) > 1:
        guides["mean+2sd"] = fvd["mean"] + 2 * fvd["std"]
    return line_plot_png(
        path, {"FVD": [r["fvd"] for r in report["sets"]]},
        title=f"FVD ({report['extractor']['extractor']}) of {len(report['sets'])} sample sets "
              f"vs {report['real']['source']}",
        xlabel="sample set", ylabel="FVD",
        guides=guides)


def object_reports(real: VideoSet, samples: list[VideoSet],
                   extractor: Extractor) -> dict[str, Any]:
    """Object failures of the real set and of every sample set ({"videos", "domain": why} for a
    set that is not moving shapes); the objects extractor's tracks are reused."""
    from .objects import domain_problem
    from .tracker import as_unit_frames, object_report, track_set

    def one(s: VideoSet) -> dict[str, Any]:
        problem = domain_problem(as_unit_frames(s.videos))
        if problem is not None:
            return {"source": s.source, "videos": len(s),
                    "domain": f"not moving shapes ({problem}): no object figures"}
        tracks = (extractor.tracks(s.videos) if hasattr(extractor, "tracks")
                  else track_set(s.videos))
        return {"source": s.source, **object_report(tracks)}

    return {"real": one(real), "sets": [one(s) for s in samples]}


def object_lines(objects: dict[str, Any]) -> list[str]:
    """The printed table: one row per set, each event's share and 95% interval."""
    from .tracker import EVENTS

    names = (*EVENTS, "intact")
    lines = ["objects (share of videos, 95% interval):",
             f"  {'set':24s} " + " ".join(f"{n:>17s}" for n in names)]
    for label, row in [("real", objects["real"])] + [
            (f"set {i + 1}", r) for i, r in enumerate(objects["sets"])]:
        if row.get("domain"):
            lines.append(f"  {label:24s} {row['domain']}")
            continue
        cells = [f"{row['shares'][n]['share']:5.1%} [{row['shares'][n]['ci95'][0]:4.0%},"
                 f"{row['shares'][n]['ci95'][1]:4.0%}]" for n in names]
        lines.append(f"  {label:24s} " + " ".join(f"{c:>17s}" for c in cells))
    return lines
