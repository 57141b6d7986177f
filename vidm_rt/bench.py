"""`vidm-rt bench`: the same video on every backend and on the reference's own loop, in one run.

Each configuration gets warm-up runs, then `repeats` timed runs; the median is reported. Rows:
    onnxruntime / torch / tensorrt   the engine's schedule (sampler, steps) on that backend; on
                          CUDA, torch and tensorrt replay each frame as a captured CUDA graph
                          (unless --no-cuda-graphs), the first warm-up video captures it
    reference-loop        torch eager with the flow recomputed at every step and the reference
                          sampler (ancestral, 100 steps): what the original implementation runs
ms_per_step times one motion denoiser launch alone (flow excluded, synchronized), ms_per_frame a
whole motion frame. Every backend runs on --device (tensorrt always on CUDA), the reference loop
too. Only ratios measured in the same run are meaningful: the machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_text


def _median_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _time_generator(gen: Any, device: str, frames: int, seed: int, repeats: int,
                    warmup: int) -> tuple[float, float]:
    """Median ms of a whole video (from a given first frame) and of one motion denoiser step
    waited for; a GPU gets at least one warm-up video (captures, lazy loading)."""
    first = np.zeros((gen.batch, *gen.image_shape), np.float32)

    def video() -> None:
        for _ in gen.generate(frames, seed=seed, first_frame=first):
            pass

    video_ms = _median_ms(video, repeats, max(warmup, 1 if device != "cpu" else 0))
    launch = gen.denoiser_launch("motion")

    def step() -> None:
        launch()
        gen.backend.synchronize()

    return video_ms, _median_ms(step, max(repeats, 5) * 4, warmup)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class BenchTarget:
    """Where the backends run: device, the TensorRT engine directory, runtime options."""

    device: str = "cpu"
    trt_engine: Path | None = None
    options: Any = field(default=None)


def machine_info(threads: int | None, gpu: str | None = None) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "threads": threads,
            "python": platform.python_version()}


def write_report(path: Path, threads: int | None, fields: dict[str, Any]) -> None:
    """A bench script's JSON: the machine and date, then `fields`; written under a temporary
    name and renamed, so an interrupted run leaves no half-written file."""
    write_text(path, json.dumps({"machine": machine_info(threads),
                                 "date": date.today().isoformat(), **fields}, indent=2))
    print(f"wrote {path}")


def _precisions(backend: str, wanted: list[str], target: BenchTarget) -> list[str | None]:
    """The precisions a backend is timed at: onnxruntime each wanted one; torch fp32, plus fp16
    autocast on CUDA; tensorrt the engine's (None)."""
    if backend == "onnxruntime":
        return list(wanted)
    if backend == "torch":
        return [p for p in wanted if p == "fp32" or (p == "fp16" and target.device != "cpu")] \
            or ["fp32"]
    return [None]


def run_bench(engine_dir: Path, backends: list[str], frames: int, repeats: int, warmup: int,
              reference_steps: int, threads: int | None, seed: int = 0,
              log: Callable[[str], None] = print,
              target: BenchTarget | None = None,
              precisions: list[str] | None = None) -> dict[str, Any]:
    """`precisions` (default fp32): see `_precisions` for which rows each backend gets."""
    from .runtime import RuntimeOptions, VideoGenerator

    target = target or BenchTarget()
    results = []
    manifest = None
    gpu = None
    configs = [(b, p) for b in backends for p in _precisions(b, precisions or ["fp32"], target)]
    for backend, precision in configs:
        trt = backend == "tensorrt"
        device = "cuda" if trt and target.device == "cpu" else target.device
        options = target.options
        if precision is not None:
            options = replace(options or RuntimeOptions(), precision=precision)
        with VideoGenerator(target.trt_engine if trt else engine_dir, backend=backend,
                            device=device, threads=threads, options=options) as gen:
            manifest = manifest or gen.manifest
            gpu = gpu or getattr(gen.backend, "gpu_name", None)
            video_ms, step_ms = _time_generator(gen, device, frames, seed, repeats, warmup)
            per_frame = video_ms / max(frames - 1, 1)
            precision = (gen.manifest.tensorrt.precision if trt
                         else getattr(options, "precision", None) or "fp32")
            results.append({
                "backend": backend, "device": device, "precision": precision,
                "cuda_graphs": gen.program("motion").capturing,
                "sampler": gen.table.sampler, "steps": gen.table.steps, "ms_per_step": step_ms,
                "ms_per_frame": per_frame, "frames_per_s": 1000.0 * gen.batch / per_frame,
                "peak_rss_mb": _peak_rss_mb(),
            })
        log(f"{backend} {precision}: {per_frame:.1f} ms/frame, {step_ms:.2f} ms/step")

    if reference_steps:
        import torch

        from .checkpoint import load_checkpoint
        from .reference import generate_video
        from .schedule import sampler_table

        if threads:
            torch.set_num_threads(threads)
        ckpt = load_checkpoint(Path(engine_dir) / "model.safetensors")
        motion = ckpt.motion.to(target.device)
        table = sampler_table("ancestral", reference_steps)
        batch = manifest.batch
        size = (manifest.height, manifest.width)
        first = torch.zeros(batch, 3, *size)

        def ref_video() -> None:
            generate_video(motion, table, frames, first_frame=first, seed=seed, batch=batch,
                           recompute_flow=True, device=target.device)
            if target.device != "cpu":
                torch.cuda.synchronize()

        ref_ms = _median_ms(ref_video, max(1, repeats // 2), min(warmup, 1))
        per_frame = ref_ms / max(frames - 1, 1)
        results.append({
            "backend": "reference-loop", "device": target.device, "precision": "fp32",
            "cuda_graphs": False, "sampler": "ancestral",
            "steps": reference_steps, "ms_per_step": per_frame / reference_steps,
            "ms_per_frame": per_frame, "frames_per_s": 1000.0 * batch / per_frame,
            "peak_rss_mb": _peak_rss_mb(),
        })
        log(f"reference-loop: {per_frame:.1f} ms/frame")
        for row in results:
            row["speedup_vs_reference_loop"] = per_frame / row["ms_per_frame"]
    return {
        "machine": machine_info(threads, gpu), "date": date.today().isoformat(),
        "preset": manifest.config.name, "frames": frames, "batch": manifest.batch,
        "engine": str(engine_dir), "results": results,
    }


def format_table(report: dict[str, Any]) -> str:
    cols = ("backend", "device", "precision", "cuda_graphs", "sampler", "steps", "ms_per_step",
            "ms_per_frame", "frames_per_s", "peak_rss_mb", "speedup_vs_reference_loop")
    rows = [[_fmt(r.get(c)) for c in cols] for r in report["results"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "-|-".join("-" * w for w in widths)
    body = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if v < 1000 else f"{v:.0f}"
    return str(v)
