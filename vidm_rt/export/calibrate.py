"""`vidm-rt calibrate`: INT8 graphs calibrated on the inputs the denoisers really see.

Recording runs the export's FP32 graphs with its own sampler over `videos` generator runs (one
batch of videos each) and keeps, for every denoiser and every step, one input set per run:
    content   every step of frame 0
    motion    at step i of run v, frame 1 + (v + i) mod (frames - 1)
so each step has exactly `videos` samples and the motion samples cover the frames evenly
across steps (frame position enters the motion model through PGN, like the step). An export
without a content model (image-to-video, like the released checkpoint) records its motion inputs
from given first frames: video v starts from image v mod N (vidm_rt.video.first_frames_for).

    calibration/<name>/
        calibration.json   what was recorded: export, sha256 of the FP32 graphs, seed, videos,
                           frames, steps, the number of given first frames, and the sample
                           count of every (denoiser, step)
        content.npz        per graph input an array (count, *shape), plus step, frame, run
        motion.npz

Quantizing then writes <graph>.int8.onnx into the export directory for each denoiser and adds
"int8" to the manifest's "precisions" (flow and update stay FP32: the flow runs once per frame,
under 1% of a frame's time, and the update is the sampler's arithmetic), with each denoiser's
last `QuantOptions.fp32_final_steps` steps on its FP32 graph ("<denoiser>.final"). Those
FP32-typed QDQ graphs are what ONNX Runtime runs on the CPU. For TensorRT, whose strongly typed
build takes every type from the graph, a denoiser with an FP16 graph also gets
<graph>.int8.fp16.onnx, the same Q/DQ on the FP16-typed graph (INT8 + FP16), listed in the
manifest's quantization.tensorrt_files; `vidm-rt build --precision int8` builds from it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write, holds
from ..manifest import GraphFile, ManifestError, final_graph, load_manifest, write_manifest
from .int8 import QuantOptions

CALIBRATION_JSON = "calibration.json"
# Per recorded input, beside the graph inputs in <graph>.npz: where it was recorded.
INDEX_KEYS = ("step", "frame", "run")
DENOISERS = ("content", "motion")
# manifest "quantization" key: {graph: the INT8 + FP16 graph `vidm-rt build` gives TensorRT}
TENSORRT_FILES = "tensorrt_files"


def motion_frame(run: int, step: int, frames: int) -> int:
    """The motion frame whose inputs are recorded at `step` of generator run `run`."""
    return 1 + (run + step) % (frames - 1)


def record_calibration(export_dir: Path, out_dir: Path, videos: int, seed: int = 0,
                       frames: int | None = None,
                       on_step: Callable[[], None] | None = None,
                       first_frames: np.ndarray | None = None) -> dict[str, Any]:
    """Run the FP32 sampler and write the recorded inputs to `out_dir` (replaced atomically).

    `first_frames` (N, C, H, W): frame 0 of the videos, for an export without a content model.
    """
    from ..runtime import VideoGenerator
    from ..video import first_frames_for

    export_dir, out_dir = Path(export_dir), Path(out_dir)
    recorded: dict[str, list[tuple[int, int, int, dict[str, np.ndarray]]]] = {}
    state = {"run": 0, "calls": {}}

    def observe(graph: str, step: int, inputs: dict[str, np.ndarray]) -> None:
        call = state["calls"].get(graph, 0)
        state["calls"][graph] = call + 1
        frame = 0 if graph == "content" else 1 + call // gen.table.steps
        if graph == "content" or frame == motion_frame(state["run"], step, frames):
            recorded.setdefault(graph, []).append((step, frame, state["run"], inputs))

    with VideoGenerator(export_dir, observer=observe) as gen:
        if gen.has_content and first_frames is not None:
            # Its content graph gets INT8 too, and needs inputs recorded from its own sampling.
            raise ValueError(f"{export_dir}: has a content model, which makes the first frames "
                             "it is calibrated on: leave out the first frames")
        if not gen.has_content and first_frames is None:
            raise ManifestError(f"{export_dir}: has no content model (image-to-video): give "
                                "images to start the videos from (--first-frames)")
        frames = frames or gen.default_frames
        if frames < 2:
            raise ValueError("calibration needs at least 2 frames per video (one motion frame)")
        if videos < 1:
            raise ValueError("calibration needs at least 1 video")
        for run in range(videos):
            state["run"], state["calls"] = run, {}
            first = (None if first_frames is None
                     else first_frames_for(first_frames, run * gen.batch, gen.batch))
            for _ in gen.generate(frames, seed=seed, first_video=run * gen.batch,
                                  first_frame=first, on_step=on_step):
                pass

    steps = gen.table.steps
    manifest = gen.manifest
    info = {
        "export": manifest.name, "videos": videos, "batch": gen.batch, "seed": seed,
        "frames": frames, "steps": steps, "sampler": gen.table.sampler,
        "first_frames": None if first_frames is None else len(first_frames),
        "fp32_graphs": {g: manifest.files[manifest.graphs[g].file] for g in recorded},
        "samples": {g: {"count": len(rows),
                        "per_step": np.bincount([r[0] for r in rows], minlength=steps).tolist()}
                    for g, rows in recorded.items()},
    }
    with atomic_write(out_dir, directory=True, ours=holds(CALIBRATION_JSON)) as tmp:
        for graph, rows in recorded.items():
            arrays = {name: np.stack([r[3][name] for r in rows]) for name in rows[0][3]}
            index = {key: np.array([r[i] for r in rows]) for i, key in enumerate(INDEX_KEYS)}
            np.savez(tmp / f"{graph}.npz", **index, **arrays)
        (tmp / CALIBRATION_JSON).write_text(json.dumps(info, indent=2))
    return info


def load_calibration(calib_dir: Path, graph: str) -> list[dict[str, np.ndarray]]:
    """The recorded input dicts of one denoiser, in recording order."""
    with np.load(Path(calib_dir) / f"{graph}.npz") as data:
        names = [n for n in data.files if n not in INDEX_KEYS]
        arrays = {n: data[n] for n in names}
    count = len(next(iter(arrays.values())))
    return [{n: arrays[n][i] for n in names} for i in range(count)]


def calibration_index(calib_dir: Path, graph: str) -> dict[str, np.ndarray]:
    """Where each of load_calibration's inputs was recorded: {"step", "frame", "run"} arrays."""
    with np.load(Path(calib_dir) / f"{graph}.npz") as data:
        return {key: data[key] for key in INDEX_KEYS}


def calibration_info(calib_dir: Path, export_dir: Path) -> dict[str, Any]:
    """calibration.json of `calib_dir` (recorded from `export_dir`), or ManifestError."""
    path = Path(calib_dir) / CALIBRATION_JSON
    if not path.is_file():
        raise ManifestError(f"{calib_dir}: no {CALIBRATION_JSON}: record it with "
                            f"`vidm-rt calibrate {export_dir}`")
    return json.loads(path.read_text())


def quantize_export(export_dir: Path, calib_dir: Path, options: QuantOptions | None = None,
                    say: Callable[[str], None] = lambda _msg: None) -> dict[str, str]:
    """Write <graph>.int8.onnx for each recorded denoiser and register "int8" in the manifest."""
    options = options or QuantOptions()
    from .int8 import quantize_graph, write_fp16_qdq

    export_dir, calib_dir = Path(export_dir), Path(calib_dir)
    manifest = load_manifest(export_dir)
    info = calibration_info(calib_dir, export_dir)
    for graph, digest in info["fp32_graphs"].items():
        if manifest.files.get(manifest.graphs[graph].file) != digest:
            raise ManifestError(f"{calib_dir} was recorded for other {graph} weights than "
                                f"{export_dir}'s: run `vidm-rt calibrate {export_dir}` again")
    # A scratch folder inside the export, so each finished graph is renamed into place.
    with tempfile.TemporaryDirectory(prefix=".int8.", dir=export_dir) as scratch:
        tmp = Path(scratch)
        files, kept = {}, {}
        for graph in info["fp32_graphs"]:
            say(f"quantizing {graph} on {info['samples'][graph]['count']} recorded inputs")
            files[graph] = f"{graph}.int8.onnx"
            kept[graph] = quantize_graph(export_dir / manifest.graphs[graph].file,
                                         tmp / files[graph], load_calibration(calib_dir, graph),
                                         options, tmp)
        # TensorRT's INT8 graphs: the same Q/DQ on the FP16-typed graph (export/int8.py), for
        # every denoiser that has an FP16 graph; ONNX Runtime keeps the FP32-typed QDQ graphs.
        fp16_files = {g: f.file for g, f in (manifest.precisions or {}).get("fp16", {}).items()}
        tensorrt = {}
        for graph in files:
            if fp16_files.get(graph, manifest.graphs[graph].file) != manifest.graphs[graph].file:
                say(f"writing {graph}.int8.fp16.onnx (INT8 + FP16, for TensorRT)")
                tensorrt[graph] = write_fp16_qdq(tmp / files[graph],
                                                 export_dir / fp16_files[graph],
                                                 tmp / f"{graph}.int8.fp16.onnx")
        for file in [*files.values(), *tensorrt.values()]:
            (tmp / file).replace(export_dir / file)
        int8 = {g: GraphFile(files.get(g, spec.file)) for g, spec in manifest.graphs.items()}
        if options.fp32_final_steps:
            for graph in files:
                int8[final_graph(graph)] = GraphFile(manifest.graphs[graph].file,
                                                     options.fp32_final_steps)
        write_manifest(export_dir, replace(
            manifest, precisions={**(manifest.precisions or {}), "int8": int8},
            files={**manifest.files, **dict.fromkeys([*files.values(), *tensorrt.values()], "")},
            quantization={"options": options.to_dict(), "kept_fp32_nodes": kept,
                          TENSORRT_FILES: tensorrt,
                          "calibration": {k: info[k] for k in
                                          ("videos", "seed", "frames", "steps")}}))
        return {g: spec.file for g, spec in int8.items()}
