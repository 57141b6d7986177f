"""Whole-video speed of a few-step student against its teacher's samplers, in one run, and where
each motion frame's time goes.

    python bench/student_speed.py --threads 2 --frames 48 \
        --row "student ddim4=export/student-ddim4" \
        --row "teacher ancestral 20=export/teacher" \
        --row "teacher ancestral 100=export/teacher:ancestral:100" \
        --reference "teacher ancestral 100" --json bench/results/DATE-student-speed.json

A row is LABEL=ENGINE, or LABEL=ENGINE:SAMPLER:STEPS to run that export with another sampler
(the graphs do not depend on it). Every row generates the same number of frames from its own
content frame on ONNX Runtime at the export's batch; rounds interleave the rows and each row's
median is reported, with its speed-up over --reference (only ratios in one run compare: the
machine is shared).

The breakdown comes from one more video per row with every launch of the motion frame timed:
denoiser (the network evaluations), flow, update (the sampler's graph), noise (drawing it on the
host), copies (buffer zeroing and copies), and the rest of the frame's wall time: Python, the
generator's per-frame writes and reads, and the timers themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidm_rt.bench import write_report
from vidm_rt.manifest import load_manifest
from vidm_rt.runtime import VideoGenerator
from vidm_rt.runtime.frame import CopyBuffer, DrawNoise, Op, RunGraph, ZeroBuffer, frame_ops
from vidm_rt.schedule import sampler_table

PARTS = ("denoiser", "flow", "update", "noise", "copies")


def parse_row(text: str) -> tuple[str, Path, tuple[str, int] | None]:
    label, sep, spec = text.partition("=")
    if not sep or not label or not spec:
        raise SystemExit(f"--row {text!r}: write LABEL=ENGINE or LABEL=ENGINE:SAMPLER:STEPS")
    parts = spec.split(":")
    if len(parts) == 1:
        return label, Path(parts[0]), None
    if len(parts) == 3 and parts[2].isdigit():
        return label, Path(parts[0]), (parts[1], int(parts[2]))
    raise SystemExit(f"--row {text!r}: write LABEL=ENGINE or LABEL=ENGINE:SAMPLER:STEPS")


def part_of(op: Op) -> str:
    if isinstance(op, RunGraph):
        graph = op.launch.graph
        return graph if graph in ("flow", "update") else "denoiser"
    if isinstance(op, DrawNoise):
        return "noise"
    assert isinstance(op, ZeroBuffer | CopyBuffer)
    return "copies"


def timed(fn: Callable[[], None], part: str, totals: dict[str, float]) -> Callable[[], None]:
    def run() -> None:
        t0 = time.perf_counter()
        fn()
        totals[part] += time.perf_counter() - t0

    return run


def breakdown(gen: VideoGenerator, frames: int) -> dict[str, float]:
    """ms per motion frame spent in each part, and the rest of the frame's wall time."""
    for _ in gen.generate(2, seed=1):  # binds the motion program
        pass
    program = gen.program("motion")
    ops = frame_ops(gen.plan, "motion", gen.table)
    totals = dict.fromkeys(PARTS, 0.0)
    plain = list(program.launches)
    program.launches[:] = [timed(fn, part_of(op), totals) for fn, op in zip(plain, ops,
                                                                            strict=True)]
    wall = 0.0
    try:
        video = gen.generate(frames, seed=1)
        next(video)  # the content frame, not timed
        for _ in range(frames - 1):
            t0 = time.perf_counter()
            next(video)
            wall += time.perf_counter() - t0
    finally:
        program.launches[:] = plain
    per_frame = {part: 1000 * s / (frames - 1) for part, s in totals.items()}
    per_frame["rest"] = 1000 * wall / (frames - 1) - sum(per_frame.values())
    return per_frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--row", action="append", required=True, help="LABEL=ENGINE[:SAMPLER:STEPS]")
    ap.add_argument("--reference", required=True, help="The label the speed-ups are against.")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench/results/student-speed.json"))
    args = ap.parse_args()
    rows = [parse_row(r) for r in args.row]
    labels = [label for label, _, _ in rows]
    if args.reference not in labels:
        raise SystemExit(f"--reference {args.reference!r} is not a row's label: {labels}")
    for label, engine, _ in rows:
        if not (engine / "manifest.json").is_file():
            raise SystemExit(f"row {label!r}: {engine} is not an export (no manifest.json)")

    with contextlib.ExitStack() as stack:
        gens: dict[str, VideoGenerator] = {}
        for label, engine, sampler in rows:
            table = None
            if sampler is not None:
                table = sampler_table(*sampler, clip_x0=load_manifest(engine).sampler.clip_x0)
            gens[label] = stack.enter_context(VideoGenerator(engine, threads=args.threads,
                                                             table=table))

        def video(gen: VideoGenerator) -> None:
            for _ in gen.generate(args.frames, seed=0):
                pass

        times: dict[str, list[float]] = {label: [] for label in gens}
        for gen in gens.values():
            video(gen)  # warm-up
        for r in range(args.repeats):
            for label, gen in gens.items():
                t0 = time.perf_counter()
                video(gen)
                times[label].append(time.perf_counter() - t0)
            print(f"round {r + 1}/{args.repeats}", flush=True)
        parts = {label: breakdown(gen, args.frames) for label, gen in gens.items()}

    ref = statistics.median(times[args.reference])
    results: list[dict[str, Any]] = []
    for label, gen in gens.items():
        s = statistics.median(times[label])
        results.append({
            "label": label, "engine": str(gen.engine_dir), "batch": gen.batch,
            "sampler": gen.table.sampler, "steps": gen.table.steps,
            "video_s": s, "frames_per_s": gen.batch * args.frames / s,
            "speedup": ref / s, "motion_frame_ms": parts[label]})
    print(f"\n{args.frames}-frame video, batch {results[0]['batch']}, {args.threads} thread(s), "
          f"ONNX Runtime; speed-up against {args.reference}\n")
    print("| row | sampler | steps | video s | frames/s | speed-up | "
          + " | ".join(f"{p} ms" for p in (*PARTS, "rest")) + " |")
    print("|---" * (7 + len(PARTS)) + "|")
    for row in results:
        ms = row["motion_frame_ms"]
        print(f"| {row['label']} | {row['sampler']} | {row['steps']} | {row['video_s']:.2f} | "
              f"{row['frames_per_s']:.1f} | {row['speedup']:.1f}x | "
              + " | ".join(f"{ms[p]:.2f}" for p in (*PARTS, "rest")) + " |")
    write_report(args.json, args.threads, {"frames": args.frames, "repeats": args.repeats,
                                           "reference": args.reference, "results": results})


if __name__ == "__main__":
    main()
