"""`export_checkpoint`: the steps of an export, in the order they run.

    check the options and the checkpoint      nothing is written before both pass
    write the weights                          model.safetensors, for the torch backend
    export the networks                        content, flow, motion: each checked against torch
    write the FP16 graphs                      checked against their FP32 graph, as an engine rounds
    write the update graph                     checked against the numpy sampler update
    refuse failed checks                       nothing is left behind
    write the manifest                         shapes, schedule, precisions, versions, hashes

The torch models are freed as soon as their graphs are done, before the FP16 graphs are made
(peak memory: docs/memory.md). The export is built in a temporary folder and renamed into place
only when every check passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write, holds
from ..manifest import MANIFEST, write_manifest
from ..schedule import SamplerTable
from .checks import max_error, release_memory, run_graph, save_model
from .options import EXPORT_REVISION, TOLERANCE, ExportError, ExportOptions


@dataclass
class _Export:
    """What the steps of one export share."""

    options: ExportOptions
    loaded: Any                        # vidm_rt.checkpoint.Checkpoint; models dropped when done
    dims: tuple[int, int, int, int]    # batch, channels, height, width
    table: SamplerTable
    frames: int
    say: Callable[[str], None]
    tmp: Path = Path()
    graphs: dict[str, Any] = field(default_factory=dict)    # manifest entry per graph
    errors: dict[str, float] = field(default_factory=dict)  # validation error per graph
    checks: dict[str, Any] = field(default_factory=dict)    # FP32 (inputs, outputs) per graph


def export_checkpoint(
    checkpoint: str | Path,
    options: ExportOptions,
    train_frames: int | None = None,
    progress: Callable[[str], None] | None = None,
    stages: Callable[[int], None] | None = None,
) -> tuple[Path, dict[str, float]]:
    """Export, validate and write `options.out_dir / options.name`; returns (path, errors).

    `progress(message)` is called as each graph starts; `stages(n)` once before the first,
    with how many such calls follow (for a progress bar)."""
    options.check()
    job = _checked(checkpoint, options, train_frames, progress or (lambda _msg: None))
    target = Path(options.out_dir) / options.name
    with atomic_write(target, directory=True, ours=holds(MANIFEST)) as tmp:
        job.tmp = tmp
        _write_weights(job)
        if stages is not None:
            stages(_stage_count(job))
        _export_networks(job)
        _write_fp16_graphs(job)
        _write_update_graph(job)
        _refuse_failed_checks(job.errors)
        _write_export_manifest(job)
    return target, job.errors


def _checked(checkpoint: str | Path, options: ExportOptions, train_frames: int | None,
             say: Callable[[str], None]) -> _Export:
    """Load the checkpoint and check that it can be exported with `options`."""
    from ..checkpoint import load_checkpoint
    from ..schedule import sampler_table

    loaded = load_checkpoint(checkpoint, train_frames=train_frames)
    cfg = loaded.config
    if loaded.motion is None:
        raise ExportError(f"{checkpoint}: the checkpoint has no motion model to export")
    h = options.height or cfg.image_size
    w = options.width or cfg.image_size
    if loaded.content is not None and (h, w) != (cfg.image_size, cfg.image_size):
        raise ExportError(
            f"the content model generates {cfg.image_size}x{cfg.image_size} frames (its learned "
            f"constant image has that size): export at that size, not {h}x{w}"
        )
    unit = 2 ** (len(cfg.motion.channel_mult) - 1)
    if h % unit or w % unit:
        raise ExportError(f"height and width must be multiples of {unit} for this UNet")
    if loaded.content is None and set(options.fp16_graphs) == {"content"}:
        raise ExportError(f"{checkpoint}: has no content model, so FP16 graphs 'content' leave "
                          "nothing in FP16: choose motion")
    table = sampler_table(options.sampler, options.steps, eta=options.eta,
                          spacing=options.spacing)
    frames = options.frames or cfg.train_frames
    if frames < 1:
        raise ExportError("frames must be at least 1")
    if options.fp16_weights:
        _round_to_fp16(loaded.content, loaded.motion)
    return _Export(options, loaded, (options.batch, cfg.image_channels, h, w), table, frames, say)


def _stage_count(job: _Export) -> int:
    """How many progress messages the steps after the weights send."""
    made = {"content", "motion"} if job.loaded.content is not None else {"motion"}
    return len(made) + 1 + len(made & set(job.options.fp16_graphs)) + 1


def _write_weights(job: _Export) -> None:
    """model.safetensors first, so that each model can be freed as soon as its graphs are done."""
    from ..checkpoint import save_checkpoint

    loaded = job.loaded
    save_checkpoint(job.tmp / "model.safetensors", loaded.config, loaded.content, loaded.motion)


def _export_networks(job: _Export) -> None:
    """content (when there is one), flow and motion, each checked against its torch module."""
    import torch

    from .graphs import ContentGraph, FlowGraph, MotionGraph

    loaded = job.loaded
    generators = (torch.Generator().manual_seed(1234), torch.Generator().manual_seed(5678))
    networks = [("content", ContentGraph)] if loaded.content is not None else []
    for name, wrapper in [*networks, ("flow", FlowGraph), ("motion", MotionGraph)]:
        model = loaded.content if name == "content" else loaded.motion
        job.graphs[name], job.errors[name], check = _export_network(
            name, wrapper(model), job, generators)
        if name in job.options.fp16_graphs:
            job.checks[name] = check
        if name == "content":
            loaded.content = None
        del model, check
    loaded.motion = None
    release_memory()


def _export_network(name: str, module: Any, job: _Export,
                    generators: tuple[Any, Any]) -> tuple[dict[str, Any], float, Any]:
    """Export one network graph and check it against the module on fresh inputs; returns (its
    manifest entry, its error, (inputs, the graph's outputs on them)), the last for checking its
    FP16 variant later. The exporter's program and the validation session are gone when this
    returns."""
    import torch

    from .graphs import INPUTS, OUTPUTS, embed_weights, example_inputs, export_graph, input_shapes

    b, c, h, w = job.dims
    cc = job.loaded.config.cond_channels
    job.say(f"exporting {name}.onnx")
    path = job.tmp / f"{name}.onnx"
    export_graph(module, name, example_inputs(name, b, c, h, w, generators[0], cc), path,
                 job.options.opset)
    release_memory()
    fresh = example_inputs(name, b, c, h, w, generators[1], cc)
    feeds = {n: t.numpy() for n, t in zip(INPUTS[name], fresh, strict=True)}
    with torch.no_grad():
        want = [module(*fresh).numpy()]
    got = run_graph(path, feeds)
    release_memory()
    embed_weights(path)
    out_shape = [b, cc, h, w] if name == "flow" else [b, 2 * c, h, w]
    entry = {
        "file": path.name,
        "inputs": {n: {"shape": s, "dtype": "float32"}
                   for n, s in input_shapes(name, b, c, h, w, cc).items()},
        "outputs": {OUTPUTS[name][0]: {"shape": out_shape, "dtype": "float32"}},
    }
    return entry, max_error(got, want), (feeds, got)


def _write_fp16_graphs(job: _Export) -> None:
    """<graph>.fp16.onnx of every graph of options.fp16_graphs that the checkpoint has."""
    for name, check in job.checks.items():
        job.errors[f"{name}.fp16"] = _write_fp16(name, job, check)


def _write_fp16(name: str, job: _Export, check: Any) -> float:
    """Write `name`.fp16.onnx from the FP32 graph and return its error against the FP32 graph's
    outputs (`check` from _export_network), computed as an FP16 engine computes (the CPU EP's
    own run rounds less). One copy of the weights at a time: the FP32 graph, its FP16
    conversion, the conversion rounded as an engine rounds, its session."""
    import onnx

    from ..precision import emulate_fp16
    from .fp16 import convert_to_fp16, fp16_nodes

    tmp = job.tmp
    job.say(f"writing {name}.fp16.onnx")
    fp32_graph = onnx.load(str(tmp / f"{name}.onnx"))
    fp16 = convert_to_fp16(fp32_graph, fp16_nodes(fp32_graph, job.options.fp16_fp32_tail))
    del fp32_graph
    release_memory()
    save_model(fp16, tmp / f"{name}.fp16.onnx")
    emulated = emulate_fp16(fp16)
    del fp16
    release_memory()
    # Saved with its weights beside it: serialising a whole large model holds several copies of
    # it at once, writing the weights out one by one holds none.
    path, weights = tmp / f".{name}.fp16-emulated.onnx", f".{name}.fp16-emulated.weights"
    onnx.save_model(emulated, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=weights)
    del emulated
    release_memory()
    feeds, want = check
    got = run_graph(path, feeds)
    path.unlink()
    (tmp / weights).unlink()
    release_memory()
    return max_error(got, want)


def _write_update_graph(job: _Export) -> None:
    """update.onnx, checked against the numpy sampler update on random inputs."""
    from ..schedule import apply_update
    from .update_graph import UPDATE_INPUTS, UPDATE_OUTPUTS, write_update_graph

    b, c, h, w = job.dims
    table = job.table
    job.say("writing update.onnx")
    upd = job.tmp / "update.onnx"
    write_update_graph(upd, b, c, h, w, table.clip_x0, job.options.opset)
    rng = np.random.default_rng(0)
    img, out = (b, c, h, w), (b, 2 * c, h, w)
    feeds = {"x": rng.standard_normal(img), "model_out": rng.standard_normal(out),
             "coef": table.coefficients()[0], "noise": rng.standard_normal(img),
             "x0_prev": rng.standard_normal(img)}
    feeds = {k: np.asarray(v, np.float32) for k, v in feeds.items()}
    model_out = feeds["model_out"]
    want = apply_update(table, 0, feeds["x"], model_out[:, :c], model_out[:, c:], feeds["noise"],
                        feeds["x0_prev"])
    job.errors["update"] = max_error(run_graph(upd, feeds), want)
    job.graphs["update"] = {
        "file": upd.name,
        "inputs": {n: {"shape": list(feeds[n].shape), "dtype": "float32"} for n in UPDATE_INPUTS},
        "outputs": {n: {"shape": list(img), "dtype": "float32"} for n in UPDATE_OUTPUTS},
    }


def _refuse_failed_checks(errors: dict[str, float]) -> None:
    failed = {k: v for k, v in errors.items() if not v <= TOLERANCE[k]}
    if failed:
        raise ExportError(
            "validation against PyTorch failed: " + ", ".join(
                f"{k} error {v:.2e} > {TOLERANCE[k]:.0e}" for k, v in failed.items())
            + "; nothing was written"
        )


def _write_export_manifest(job: _Export) -> None:
    options, graphs = job.options, job.graphs
    b, _, h, w = job.dims
    precisions = {
        "fp32": {name: {"file": g["file"]} for name, g in graphs.items()},
        "fp16": {name: {"file": f"{name}.fp16.onnx" if name in options.fp16_graphs
                        else g["file"]} for name, g in graphs.items()},
    }
    files = sorted({p["file"] for per in precisions.values() for p in per.values()}
                   | {"model.safetensors"})
    write_manifest(job.tmp, {
        "kind": "onnx",
        "name": options.name,
        "export_revision": EXPORT_REVISION,
        "config": job.loaded.config.to_dict(),
        "batch": b, "height": h, "width": w, "frames": job.frames,
        "frame_index": options.frame_index,
        "fp16_weights": options.fp16_weights,
        "fp16_fp32_tail": options.fp16_fp32_tail,
        "sampler": job.table.to_dict(),
        "graphs": graphs,
        "precisions": precisions,
        "files": files,
        "versions": {**_versions(), "onnx_opset": options.opset},
        "validation": job.errors,
    })


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from .. import __version__

    return {"vidm_rt": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _round_to_fp16(*models: Any) -> None:
    """Round every float weight and buffer of `models` to its nearest FP16 value, in place.

    The FP32 graphs (and model.safetensors) then hold exactly what the FP16 graphs store, so the
    precisions differ by their arithmetic only: on the tiny model about half as many FP16
    videos become other samples of FP32's (docs/precision.md).
    """
    import torch

    from .fp16 import FP16_MAX

    with torch.no_grad():
        for model in models:
            if model is None:
                continue
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(tensor.clamp(-FP16_MAX, FP16_MAX).half())
