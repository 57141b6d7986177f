"""`vidm-rt quality`: reduced-precision graphs against the FP32 graphs on identical noise.

Every precision generates the same videos (same seed, same video numbering, so the same Philox
noise) with the same sampler; per frame the PSNR of each precision against FP32 is computed
over all videos (pooled MSE) together with its worst video, so drift along the autoregression
shows as a falling curve. The teacher-forced PSNR separates the precision's own error from that
drift: there every motion frame is generated from FP32's first and previous frames (same noise,
same frame index), so frame f differs from FP32's frame f only by what one autoregressive step
in the lower precision changes. A video counts as diverged from the frame on which its PSNR first
falls below DIVERGED_DB: its shapes have moved, from an edge one pixel over to a shape elsewhere
or moving another way (bench/divergence_shift.py measures how far), and the autoregression
carries that on. On a model whose sampling trajectories are sensitive,
the pooled PSNR is set by how many videos diverge, not by the typical video. Each precision's
videos also get the moving-shapes statistics against real moving-shapes clips
(`vidm_rt.eval.shapes.check_shapes`), which only mean something for a model trained on moving
shapes. Given first frames (image-to-video; needed for an export without a content model, like
the released checkpoint), every precision starts from them and only the motion frames are
compared; the shapes check is left out, since the videos then continue the given images.

FP16 is measured as an FP16 engine computes it (`fp16_as="engine"`): ONNX Runtime's CPU EP
computes most FP16 ops in FP32 and skips their rounding, so its own run of an FP16 graph is
closer to FP32 than TensorRT's FP16 engine would be. `fp16_as="onnxruntime"` measures that run
instead (vidm_rt/precision.py, docs/precision.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..schedule import SamplerTable
from .shapes import REAL_CLIPS_SEED, check_shapes, psnr_per_frame, psnr_per_video

if TYPE_CHECKING:
    from ..runtime import VideoGenerator

FP16_AS = ("engine", "onnxruntime")
# Teacher-forced PSNR each precision must keep on every motion frame (short-horizon parity).
PARITY_DB = {"fp16": 45.0, "int8": 30.0}
# Below this PSNR vs FP32 a frame's shapes have moved, not only its pixel values changed: at
# 32x32 one hard edge moved by a pixel already lands here.
DIVERGED_DB = 30.0


def diverged_videos(per_video_psnr: np.ndarray, threshold: float = DIVERGED_DB) -> np.ndarray:
    """(videos, frames) PSNR -> per frame, how many videos have fallen below `threshold` on
    that frame or an earlier one."""
    return np.maximum.accumulate(per_video_psnr < threshold, axis=1).sum(axis=0)


def precision_generator(export_dir: Path, precision: str, table: SamplerTable | None,
                        threads: int | None, fp16_as: str = "engine") -> VideoGenerator:
    """The export's VideoGenerator on the graphs of `precision` (ONNX Runtime); FP16 graphs
    run as `fp16_as` says (see the module docstring)."""
    from ..runtime import RuntimeOptions, VideoGenerator

    if fp16_as not in FP16_AS:
        raise ValueError(f"unknown fp16_as {fp16_as!r}: choose one of {', '.join(FP16_AS)}")
    options = RuntimeOptions(precision=precision,
                             emulate_fp16=precision == "fp16" and fp16_as == "engine")
    return VideoGenerator(export_dir, options=options, table=table, threads=threads)


def generate_videos(gen: VideoGenerator, videos: int, frames: int, seed: int,
                    on_step: Callable[[], None] | None = None,
                    first_frames: np.ndarray | None = None) -> np.ndarray:
    """(videos, frames, C, H, W) from the generator `gen` (runs of its batch); video v starts
    from first_frames[v mod N] when given, else from the content model."""
    from ..video import first_frames_for

    runs = -(-videos // gen.batch)
    clips = []
    for r in range(runs):
        first = (None if first_frames is None
                 else first_frames_for(first_frames, r * gen.batch, gen.batch))
        clips.append(np.stack(list(gen.generate(frames, seed=seed, first_video=r * gen.batch,
                                                first_frame=first, on_step=on_step)), axis=1))
    return np.concatenate(clips)[:videos]


def teacher_forced_videos(gen: VideoGenerator, reference: np.ndarray,
                          first_frames: np.ndarray, seed: int,
                          on_step: Callable[[], None] | None = None) -> np.ndarray:
    """(videos, frames, C, H, W): `first_frames` (videos, C, H, W), the precision's own content
    frames (frame 0 has no conditioning), then every motion frame f of the generator `gen` made
    from `reference`'s frames 0 and f - 1 (see the module docstring); numbering as
    generate_videos."""
    videos, frames = reference.shape[:2]
    runs = -(-videos // gen.batch)
    # The last run's unused rows repeat its last video; their frames are dropped.
    ref = np.pad(reference, [(0, runs * gen.batch - videos)] + [(0, 0)] * (reference.ndim - 1),
                 mode="edge")
    motion = []
    for r in range(runs):
        rows, first_video = ref[r * gen.batch:(r + 1) * gen.batch], r * gen.batch
        motion.append(np.stack([gen.motion_frame(f, rows[:, 0], rows[:, f - 1], seed=seed,
                                                 first_video=first_video, on_step=on_step)
                                for f in range(1, frames)], axis=1))
    return np.concatenate([first_frames[:, None], np.concatenate(motion)[:videos]], axis=1)


def compare_precisions(export_dir: Path, precisions: list[str], videos: int, frames: int,
                       seed: int = 0, table: SamplerTable | None = None,
                       threads: int | None = None,
                       on_step: Callable[[], None] | None = None,
                       teacher_forced: bool = True, fp16_as: str = "engine",
                       first_frames: np.ndarray | None = None) -> dict[str, Any]:
    """The quality report: per precision, PSNR per frame vs FP32 and the shapes check; with
    `teacher_forced`, also the teacher-forced PSNR per frame (the motion frames once more).
    `first_frames` (N, C, H, W): image-to-video, without the shapes check (module docstring)."""
    from ..data import MovingShapes, MovingShapesSpec
    from ..manifest import ManifestError, load_manifest, precision_files

    manifest = load_manifest(export_dir)
    if not manifest.has_content and first_frames is None:
        raise ManifestError(f"{export_dir}: has no content model (image-to-video): give images "
                            "to start the videos from (--first-frames)")
    for p in precisions:  # fail before any generation if one is missing
        precision_files(manifest, p, export_dir)
    table = table or manifest.sampler
    size = manifest.height
    real = None
    if first_frames is None:
        real = np.stack([MovingShapes(MovingShapesSpec(size=size, frames=frames),
                                      seed=REAL_CLIPS_SEED).clip(i) for i in range(videos)])
    out: dict[str, Any] = {
        "export": str(export_dir), "preset": manifest.config.name, "videos": videos,
        "frames": frames, "seed": seed, "sampler": table.sampler, "steps": table.steps,
        "deterministic_sampler": not table.uses_noise, "diverged_db": DIVERGED_DB,
        "teacher_forced": teacher_forced, "fp16_as": fp16_as,
        "first_frames": None if first_frames is None else len(first_frames), "results": {},
    }
    # Given first frames are every precision's frame 0: only the frames after it are compared.
    made = slice(0 if first_frames is None else 1, None)
    reference = None
    for p in ["fp32", *[q for q in precisions if q != "fp32"]]:
        with precision_generator(export_dir, p, table, threads, fp16_as) as gen:
            video = generate_videos(gen, videos, frames, seed, on_step, first_frames)
            row: dict[str, Any] = {"shapes": None if real is None
                                   else check_shapes(real, video).to_dict()}
            if reference is None:
                reference = video
            else:
                per_frame = psnr_per_frame(video, reference)
                per_video = psnr_per_video(video, reference)
                row.update(psnr_per_frame=per_frame.tolist(),
                           worst_video_psnr=per_video.min(axis=0).tolist(),
                           median_video_psnr=np.median(per_video, axis=0).tolist(),
                           diverged_videos=diverged_videos(per_video).tolist(),
                           min_psnr=float(per_frame[made].min()),
                           mean_psnr=float(per_frame[made].mean()))
                if teacher_forced:
                    forced = teacher_forced_videos(gen, reference, video[:, 0], seed, on_step)
                    forced_frame = psnr_per_frame(forced, reference)
                    row.update(teacher_forced_psnr_per_frame=forced_frame.tolist(),
                               teacher_forced_worst_video_psnr=psnr_per_video(forced, reference)
                               .min(axis=0).tolist(),
                               teacher_forced_min_psnr=float(forced_frame[made].min()))
        out["results"][p] = row
    return out


def plot_psnr(report: dict[str, Any], path: Path, targets: dict[str, float]) -> Path:
    from .plot import line_plot_png

    series = {p: r["psnr_per_frame"] for p, r in report["results"].items()
              if "psnr_per_frame" in r}
    series |= {f"{p} teacher-forced": r["teacher_forced_psnr_per_frame"]
               for p, r in report["results"].items() if "teacher_forced_psnr_per_frame" in r}
    # Identical frames measure ~300 dB (MSE floor): draw them at 100 dB to keep the scale.
    series = {p: [min(v, 100.0) for v in vals] for p, vals in series.items()}
    return line_plot_png(
        path, series, title=f"PSNR vs FP32 per frame, {report['videos']} videos, "
                            f"{report['sampler']} x{report['steps']}",
        xlabel="frame", ylabel="dB",
        guides={f"{p} teacher-forced target": t for p, t in targets.items()})
