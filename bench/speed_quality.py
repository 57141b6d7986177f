"""Speed at equal quality: FVD and whole-video time of each sampler, step count and precision,
against the reference loop (ancestral 100 steps, flow at every step, torch eager).

    vidm-rt eval --seeds 0 --videos 64 --quiet      # exports the bundled model (batch 16) once
    E=$(ls -d ~/.cache/vidm-rt/demo-tiny-b16-*)      # or $VIDM_RT_CACHE/demo-tiny-b16-*
    vidm-rt calibrate $E --videos 2 --seed 100
    python bench/speed_quality.py --engine $E --json bench/results/DATE-speed-quality.json

Quality, by both judges: for every row and seed, --videos videos generated on ONNX Runtime (one
thread per job, --jobs jobs at once), their FVD against 2048 real moving-shapes clips with the
objects extractor, and their object failures (vidm_rt.eval.tracker), as `vidm-rt eval` computes
them. The reference loop's quality is measured on the runtime
with its sampler (ancestral 100): the same samples, since the flow computed once per frame is
what the loop recomputes at every step.

Time: afterwards, with nothing else running, every row's whole video (its content frame and
F - 1 motion frames, the export's batch) in rounds that interleave the rows, the median per row;
the reference loop itself over its content frame and --reference-frames motion frames, every
motion frame costing the same. Only these ratios compare: the machine is shared.

Equal quality: a row's mean FVD is within the band (the reference's mean + 2 sd over
--reference-seeds) and its object failures are not worse: for each of appear, vanish, kind,
colour and size, the 95% interval of its share over all its videos does not lie wholly above the
reference's (nor the intact share's wholly below). Pick: the fastest row of equal quality is
confirmed on --confirm-seeds, which picked nothing; if it fails there, the next fastest is
tried. --times-from takes the whole-video times of an earlier report instead of timing (when
the machine is not quiet enough to time). Writes JSON (also after every finished set, so
--resume can continue an interrupted run) and a PNG of FVD against whole-video seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from vidm_rt.atomic import write_text
from vidm_rt.bench import write_report
from vidm_rt.eval.fvd import FeatureStats, frechet_distance, spread
from vidm_rt.eval.object_features import ObjectFeatures
from vidm_rt.eval.plot import scatter_plot_png
from vidm_rt.eval.shapes import REAL_CLIPS_SEED
from vidm_rt.eval.tracker import CHANGES, wilson
from vidm_rt.eval.videos import moving_shapes_set
from vidm_rt.manifest import load_manifest
from vidm_rt.schedule import SamplerTable, sampler_table

Row = tuple[str, int, str]  # sampler, steps, precision


def _table(engine: Path, sampler: str, steps: int) -> SamplerTable:
    clip = load_manifest(engine).sampler.clip_x0
    return sampler_table(sampler, steps, clip_x0=clip)


def sample_set(engine: Path, row: Row, seed: int, videos: int, frames: int) -> dict[str, Any]:
    """One sample set of `row` (in a worker process, one thread): its feature statistics."""
    from vidm_rt.eval.report import generated_set, set_stats

    t0 = time.perf_counter()
    s = generated_set(engine, videos, frames, seed, precision=row[2],
                      table=_table(engine, *row[:2]), threads=1)
    from vidm_rt.eval.tracker import object_report

    extractor = ObjectFeatures()
    stats = set_stats(s, extractor)
    shares = object_report(extractor.tracks(s.videos))["shares"]
    return {"row": list(row), "seed": seed, "videos": videos, "mu": stats.mu.tolist(),
            "sigma": stats.sigma.tolist(), "seconds": time.perf_counter() - t0,
            "objects": {event: v["count"] for event, v in shares.items()}}


def _key(row: Row, seed: int, videos: int) -> tuple[Any, ...]:
    return (*row, seed, videos)


class Sets:
    """Finished sample sets, saved after each one so that an interrupted run can resume."""

    def __init__(self, path: Path, resume: bool, real: FeatureStats) -> None:
        self.path, self.real, self.done = path, real, {}
        if resume and path.is_file():
            for s in json.loads(path.read_text()).get("sets", []):
                self.done[_key(tuple(s["row"]), s["seed"], s["videos"])] = s

    def run(self, engine: Path, wanted: list[tuple[Row, int]], videos: int, frames: int,
            jobs: int) -> None:
        todo = [(r, s) for r, s in wanted if _key(r, s, videos) not in self.done]
        # Longest first, so that the jobs finish together.
        todo.sort(key=lambda rs: -rs[0][1] * (0.6 if rs[0][2] == "int8" else 1.0))
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(sample_set, engine, r, s, videos, frames) for r, s in todo]
            for future in as_completed(futures):
                got = future.result()
                stats = FeatureStats(np.array(got.pop("mu")), np.array(got.pop("sigma")), videos)
                got["fvd"] = frechet_distance(stats, self.real)
                self.done[_key(tuple(got["row"]), got["seed"], videos)] = got
                print(f"  {got['row']} seed {got['seed']}: FVD {got['fvd']:.1f} "
                      f"({got['seconds']:.0f} s)", flush=True)
                self.save()

    def fvd(self, row: Row, seeds: list[int], videos: int) -> dict[str, Any]:
        return spread([self.done[_key(row, s, videos)]["fvd"] for s in seeds]).to_dict()

    def objects(self, row: Row, seeds: list[int], videos: int) -> dict[str, Any]:
        """Each event's share over all the row's videos, with its 95% interval."""
        n = videos * len(seeds)
        out = {}
        for event in (*CHANGES, "jump", "intact"):
            k = sum(self.done[_key(row, s, videos)]["objects"][event] for s in seeds)
            out[event] = {"share": k / n, "ci95": list(wilson(k, n))}
        return {"videos": n, "shares": out}


def objects_not_worse(row: dict[str, Any], reference: dict[str, Any]) -> bool:
    """No failure whose interval lies wholly above the reference's; intact not wholly below."""
    r, ref = row["shares"], reference["shares"]
    return (all(r[e]["ci95"][0] <= ref[e]["ci95"][1] for e in CHANGES)
            and r["intact"]["ci95"][1] >= ref["intact"]["ci95"][0])

    def save(self, fields: dict[str, Any] | None = None) -> None:
        """The report with `fields`, or without them a partial one (silently) for --resume."""
        sets = {"sets": list(self.done.values())}
        if fields is None:
            write_text(self.path, json.dumps({"partial": True, **sets}))
        else:
            write_report(self.path, fields.get("threads"), {**fields, **sets})


def frame_times(frames: Any) -> list[float]:
    """ms of each frame an iterator of frames yields."""
    times, t0 = [], time.perf_counter()
    for _ in frames:
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1000)
        t0 = t1
    return times


def whole_video_ms(engine: Path, reference: Row, rows: list[Row], frames: int, rounds: int,
                   motion_frames: int, reference_frames: int,
                   threads: int | None) -> dict[Row, float]:
    """Median whole-video ms per row and for the reference loop (sampler and steps of
    `reference`), rounds interleaved: content frame + (frames - 1) x the median motion frame."""
    import torch

    from vidm_rt.checkpoint import load_checkpoint
    from vidm_rt.reference import sample_video
    from vidm_rt.runtime import RuntimeOptions, VideoGenerator

    if threads:
        torch.set_num_threads(threads)
    with contextlib.ExitStack() as stack:
        gens = {row: stack.enter_context(VideoGenerator(
            engine, threads=threads, table=_table(engine, *row[:2]),
            options=RuntimeOptions(precision=row[2]))) for row in rows}
        ckpt = load_checkpoint(engine / "model.safetensors")
        batch = next(iter(gens.values())).batch
        ref_table = sampler_table(*reference[:2])

        def reference_loop() -> list[float]:
            return frame_times(sample_video(ckpt.motion, ref_table, 1 + reference_frames,
                                            content=ckpt.content, batch=batch, recompute_flow=True))

        runs: dict[Row, list[list[float]]] = {row: [] for row in [reference, *rows]}
        for gen in gens.values():  # warm-up: first runs allocate
            frame_times(gen.generate(2, seed=0))
        for r in range(rounds):
            runs[reference].append(reference_loop())
            for row, gen in gens.items():
                runs[row].append(frame_times(gen.generate(1 + motion_frames, seed=r)))
            print(f"  timing round {r + 1}/{rounds} done", flush=True)
    return {row: statistics.median(t[0] for t in ts)
            + (frames - 1) * statistics.median(m for t in ts for m in t[1:])
            for row, ts in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", type=Path, required=True,
                    help="Export of the bundled model with int8 graphs (see above).")
    ap.add_argument("--samplers", default="ancestral,ddim,dpmpp2m")
    ap.add_argument("--steps", default="50,20,10,5")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--skip", default="", help="Rows left out, as sampler:steps:precision,...")
    ap.add_argument("--seeds", default="0,1", help="Sample sets per row.")
    ap.add_argument("--reference-steps", type=int, default=100,
                    help="Steps of the reference loop's ancestral sampler.")
    ap.add_argument("--reference-seeds", default="0,1,2", help="Sample sets of the reference.")
    ap.add_argument("--confirm-seeds", default="10,11,12", help="Fresh sets for the pick.")
    ap.add_argument("--videos", type=int, default=128, help="Videos per sample set.")
    ap.add_argument("--frames", type=int, default=16, help="Frames per video.")
    ap.add_argument("--jobs", type=int, default=2, help="Sample sets made at once.")
    ap.add_argument("--rounds", type=int, default=3, help="Timing rounds.")
    ap.add_argument("--time-frames", type=int, default=2, help="Motion frames timed per round.")
    ap.add_argument("--reference-frames", type=int, default=1,
                    help="Motion frames of the reference loop timed per round.")
    ap.add_argument("--threads", type=int, default=None, help="Threads when timing (all).")
    ap.add_argument("--times-from", type=Path,
                    help="Take each row's whole-video time from this earlier report's rows.")
    ap.add_argument("--json", type=Path, default=Path("bench/results/speed-quality.json"))
    ap.add_argument("--resume", action="store_true", help="Reuse the sets already in --json.")
    args = ap.parse_args()

    ints = lambda text: [int(v) for v in text.split(",") if v]  # noqa: E731
    rows = [(s, n, p) for p in args.precisions.split(",") for s in args.samplers.split(",")
            for n in ints(args.steps)]
    skip = {tuple(r.split(":")) for r in args.skip.split(",") if r}
    rows = [r for r in rows if (r[0], str(r[1]), r[2]) not in skip]
    seeds, ref_seeds = ints(args.seeds), ints(args.reference_seeds)
    reference = ("ancestral", args.reference_steps, "fp32")
    real_set = moving_shapes_set(2048, args.frames, load_manifest(args.engine).height,
                                 seed=REAL_CLIPS_SEED)
    sets = Sets(args.json, args.resume, FeatureStats.of(ObjectFeatures().features(
        real_set.videos)))
    t0 = time.perf_counter()
    print(f"quality: {len(rows)} rows x {len(seeds)} seeds, reference x {len(ref_seeds)}")
    sets.run(args.engine, [(reference, s) for s in ref_seeds]
             + [(r, s) for r in rows for s in seeds], args.videos, args.frames, args.jobs)
    if args.times_from:
        earlier = json.loads(args.times_from.read_text())["rows"]
        ms = {(r["sampler"], r["steps"], r["precision"]): r["video_ms"] for r in earlier}
        if reference not in ms:
            raise SystemExit(f"{args.times_from} has no time for the reference loop")
        # A row timed nowhere (fp16: the CPU has no FP16 kernels) is judged, not timed.
        ms.update({r: None for r in rows if r not in ms})
    else:
        print("time:")
        ms = whole_video_ms(args.engine, reference, rows, args.frames, args.rounds,
                            args.time_frames, args.reference_frames, args.threads)
    ref = sets.fvd(reference, ref_seeds, args.videos)
    band = ref["mean"] + 2 * ref["std"]
    ref_objects = sets.objects(reference, ref_seeds, args.videos)
    table = []
    for r in [reference, *rows]:
        r_seeds = ref_seeds if r == reference else seeds
        t = {"sampler": r[0], "steps": r[1], "precision": r[2],
             "fvd": sets.fvd(r, r_seeds, args.videos),
             "objects": sets.objects(r, r_seeds, args.videos),
             "video_ms": ms[r], "speedup": ms[reference] / ms[r] if ms[r] else None}
        t["fvd_within"] = t["fvd"]["mean"] <= band
        t["objects_not_worse"] = objects_not_worse(t["objects"], ref_objects)
        t["equal_quality"] = t["fvd_within"] and t["objects_not_worse"]
        table.append(t)
    table[0]["reference_loop"] = True
    pick, confirmations = None, []
    for cand in sorted((t for t in table[1:] if t["equal_quality"] and t["video_ms"]),
                       key=lambda t: t["video_ms"])[:3]:
        row = (cand["sampler"], cand["steps"], cand["precision"])
        sets.run(args.engine, [(row, s) for s in ints(args.confirm_seeds)], args.videos,
                 args.frames, args.jobs)
        fresh = sets.fvd(row, ints(args.confirm_seeds), args.videos)
        fresh_objects = sets.objects(row, ints(args.confirm_seeds), args.videos)
        ok = fresh["mean"] <= band and objects_not_worse(fresh_objects, ref_objects)
        confirmations.append({"row": list(row), "fvd": fresh, "objects": fresh_objects,
                              "equal_quality": ok})
        if ok:
            pick = {**cand, "confirm_fvd": fresh, "confirm_objects": fresh_objects}
            break

    def cell(o: dict[str, Any], event: str) -> str:
        v = o["shares"][event]
        return f"{v['share']:.0%} [{v['ci95'][0]:.0%}, {v['ci95'][1]:.0%}]"

    print("\n| sampler x steps | precision | FVD mean +- sd | appear | vanish | kind | intact "
          "| equal quality | whole video s | vs reference loop |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in table:
        name = ("reference loop: " if t.get("reference_loop") else "") + \
            f"{t['sampler']} x {t['steps']}"
        verdict = ("reference" if t.get("reference_loop") else
                   "yes" if t["equal_quality"] else
                   "no (FVD)" if t["objects_not_worse"] else
                   "no (objects)" if t["fvd_within"] else "no (both)")
        print(f"| {name} | {t['precision']} | {t['fvd']['mean']:.1f} +- {t['fvd']['std']:.1f} | "
              f"{cell(t['objects'], 'appear')} | {cell(t['objects'], 'vanish')} | "
              f"{cell(t['objects'], 'kind')} | {cell(t['objects'], 'intact')} | {verdict} | "
              + (f"{t['video_ms'] / 1000:.1f} | {t['speedup']:.1f}x |" if t["video_ms"]
                 else "not timed | |"))
    print(f"\nband (reference mean + 2 sd): {band:.1f}")
    for c in confirmations:
        print(f"confirm {c['row']} on fresh seeds: {c['fvd']['mean']:.1f} +- {c['fvd']['std']:.1f}"
              f" -> {'equal quality' if c['equal_quality'] else 'not equal quality'}")
    if pick:
        print(f"pick: {pick['sampler']} x {pick['steps']} {pick['precision']}: "
              f"{pick['speedup']:.1f}x the reference loop's whole video")
    manifest = load_manifest(args.engine)
    sets.save({"engine": str(args.engine), "threads": args.threads, "batch": manifest.batch,
               "frames": args.frames,
               "videos": args.videos, "seeds": seeds, "reference_seeds": ref_seeds,
               "band": band, "reference_objects": ref_objects, "rows": table,
               "times_from": str(args.times_from) if args.times_from else None,
               "confirmations": confirmations, "pick": pick,
               "int8_layout": manifest.to_dict().get("quantization"),
               "seconds": time.perf_counter() - t0})
    series: dict[str, list[tuple[float, float, float]]] = {}
    for t in (t for t in table if t["video_ms"]):
        name = "reference loop" if t.get("reference_loop") else f"{t['sampler']} {t['precision']}"
        series.setdefault(name, []).append((t["video_ms"] / 1000, t["fvd"]["mean"],
                                            t["fvd"]["std"]))
    labels = {(t["video_ms"] / 1000, t["fvd"]["mean"]): str(t["steps"]) for t in table
              if t["video_ms"]}
    png = scatter_plot_png(args.json.with_suffix(".png"), series,
                           title=f"FVD (objects extractor) against whole-video time, batch "
                                 f"{manifest.batch} x {args.frames} frames; labels: steps",
                           xlabel="whole video, s (log)", ylabel="FVD",
                           guides={"reference band": band}, labels=labels)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
