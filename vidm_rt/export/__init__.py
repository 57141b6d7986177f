"""`vidm-rt export`: a checkpoint to an export directory that ONNX Runtime runs directly.

    export/<name>/
        content.onnx   (when the checkpoint has a content model)
        flow.onnx      run once per frame
        motion.onnx    run once per step, with the flow as an input
        update.onnx    the sampler update (FP32), driven by the coefficient table
        *.fp16.onnx    FP16 variants of the denoisers (see export/fp16.py): motion, and content
                       too when ExportOptions.fp16_graphs names it
        model.safetensors   the weights, for the torch backend on the same schedule
        manifest.json  config, shapes, sampler table, versions, sha256 of every file

Every graph is checked against PyTorch on fresh random inputs through ONNX Runtime (an FP16
graph against its FP32 graph, rounded as an FP16 engine rounds: vidm_rt/precision.py); if
an error exceeds its tolerance nothing is left behind (the export is built in a temporary
folder and renamed into place only when every check passed).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write, holds
from ..manifest import MANIFEST, write_manifest
from ..schedule import FRAME_INDEX_POLICIES
from .fp16 import FP32_TAIL_CONVS

# Max |onnx - torch| / (1 + max |torch|) allowed per graph (float32 on both sides).
TOLERANCE = {"content": 1e-3, "flow": 1e-3, "motion": 1e-3, "update": 1e-5,
             "content.fp16": 1e-2, "motion.fp16": 1e-2}
# Graphs that can have an FP16 variant (ExportOptions.fp16_graphs). The flow runs once per frame
# (under 1% of a frame's time on the CPU), and in FP16 its error on real frames is four times
# the denoisers' per step (docs/precision.md): it runs FP32 in every precision, like
# the sampler update.
FP16_GRAPHS = ("content", "motion")
# The default: the content model runs once per video (about 4% of a 16-frame video's denoiser
# FLOPs on the bundled model), and its FP16 error can make frame 0 another sample, which changes
# the whole video. In FP32 it left half as many FP16 videos drifting off (bench/RESULTS.md).
DEFAULT_FP16_GRAPHS = ("motion",)
# Which graphs an export writes for a given checkpoint and options; raised when that changes,
# so cached exports (the bundled demo's) are made again. 2: no FP16 flow graph. 3: FP16 graphs
# run only convolutions and products in FP16, outside the residual stream (export/fp16.py).
# 4: the last convs before the output head FP32 too (ExportOptions.fp16_fp32_tail).
EXPORT_REVISION = 4


class ExportError(ValueError):
    """The export failed a check; nothing was written."""


@dataclass
class ExportOptions:
    name: str
    out_dir: Path = Path("export")
    batch: int = 1
    frames: int | None = None          # default video length; None = the training length
    sampler: str = "dpmpp2m"
    steps: int = 20
    eta: float = 0.0
    opset: int = 18
    frame_index: str = "clamp"
    height: int | None = None
    width: int | None = None
    fp16_weights: bool = False         # round every weight to FP16 first: see _round_to_fp16
    fp16_graphs: tuple[str, ...] = DEFAULT_FP16_GRAPHS  # denoisers with an FP16 graph (fp16 runs)
    fp16_fp32_tail: int = FP32_TAIL_CONVS  # last convs before the output head kept FP32 there


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


def _run_graph(graph: Path | bytes, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of the graph file or serialized graph `graph` on ONNX Runtime's CPU EP; the
    session is gone when this returns. No arena and no prepacked weight copies: validation
    checks the graph, and a second copy of a large model's weights would double the peak."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = False
    opts.add_session_config_entry("session.disable_prepacking", "1")
    source = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def _max_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Max |got - want| / (1 + max |want|) over the outputs (see TOLERANCE)."""
    err = 0.0
    for g, w in zip(got, want, strict=True):
        err = max(err, float(np.max(np.abs(g - w)) / (1.0 + np.max(np.abs(w)))))
    return err


def _release_memory() -> None:
    """Collect what a finished step left (the exporter's programs hold reference cycles) and
    hand freed heap pages back to the system (glibc keeps them otherwise), so that the next
    step's peak does not stack on them."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _export_network(name: str, module: Any, tmp: Path, dims: tuple[int, int, int, int],
                    generators: tuple[Any, Any], options: ExportOptions,
                    say: Callable[[str], None]) -> tuple[dict[str, Any], float, Any]:
    """Export one network graph into `tmp` and check it against the module on fresh inputs;
    returns (its manifest entry, its error, (inputs, the graph's outputs on them)), the last
    for checking its FP16 variant later. The exporter's program and the validation session
    are gone when this returns."""
    import torch

    from .graphs import INPUTS, OUTPUTS, embed_weights, example_inputs, export_graph, input_shapes

    b, c, h, w = dims
    say(f"exporting {name}.onnx")
    path = tmp / f"{name}.onnx"
    export_graph(module, name, example_inputs(name, b, c, h, w, generators[0]), path,
                 options.opset)
    _release_memory()
    fresh = example_inputs(name, b, c, h, w, generators[1])
    feeds = {n: t.numpy() for n, t in zip(INPUTS[name], fresh, strict=True)}
    with torch.no_grad():
        want = [module(*fresh).numpy()]
    got = _run_graph(path, feeds)
    _release_memory()
    embed_weights(path)
    shapes = input_shapes(name, b, c, h, w)
    out_shape = [b, 2, h, w] if name == "flow" else [b, 2 * c, h, w]
    entry = {
        "file": path.name,
        "inputs": {n: {"shape": s, "dtype": "float32"} for n, s in shapes.items()},
        "outputs": {OUTPUTS[name][0]: {"shape": out_shape, "dtype": "float32"}},
    }
    return entry, _max_error(got, want), (feeds, got)


def _save(model: Any, path: Path) -> None:
    """Write an ONNX model with one serialized copy in memory (onnx.save holds about three of
    a large model at once)."""
    path.write_bytes(model.SerializeToString())


def _write_fp16(name: str, tmp: Path, check: Any, options: ExportOptions,
                say: Callable[[str], None]) -> float:
    """Write `name`.fp16.onnx from the FP32 graph in `tmp` and return its error against the
    FP32 graph's outputs (`check` from _export_network), computed as an FP16 engine computes
    (the CPU EP's own run rounds less). One copy of the weights at a time: the FP32 graph, its
    FP16 conversion, the conversion rounded as an engine rounds, its session."""
    import onnx

    from ..precision import emulate_fp16
    from .fp16 import convert_to_fp16, fp16_nodes

    say(f"writing {name}.fp16.onnx")
    fp32_graph = onnx.load(str(tmp / f"{name}.onnx"))
    fp16 = convert_to_fp16(fp32_graph, fp16_nodes(fp32_graph, options.fp16_fp32_tail))
    del fp32_graph
    _release_memory()
    _save(fp16, tmp / f"{name}.fp16.onnx")
    emulated = emulate_fp16(fp16)
    del fp16
    _release_memory()
    # Saved with its weights beside it: serialising a whole large model holds several copies of
    # it at once, writing the weights out one by one holds none.
    path, weights = tmp / f".{name}.fp16-emulated.onnx", f".{name}.fp16-emulated.weights"
    onnx.save_model(emulated, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=weights)
    del emulated
    _release_memory()
    feeds, want = check
    got = _run_graph(path, feeds)
    path.unlink()
    (tmp / weights).unlink()
    _release_memory()
    return _max_error(got, want)


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
    import torch

    from ..checkpoint import load_checkpoint, save_checkpoint
    from ..schedule import apply_update, sampler_table
    from .graphs import ContentGraph, FlowGraph, MotionGraph
    from .update_graph import UPDATE_INPUTS, UPDATE_OUTPUTS, write_update_graph

    say = progress or (lambda _msg: None)
    if options.frame_index not in FRAME_INDEX_POLICIES:
        raise ExportError(f"unknown frame index policy {options.frame_index!r}: "
                          f"choose {' or '.join(FRAME_INDEX_POLICIES)}")
    if options.batch < 1:
        raise ExportError("batch must be at least 1")
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
    odd = sorted(set(options.fp16_graphs) - set(FP16_GRAPHS))
    if odd or not options.fp16_graphs:
        raise ExportError(f"FP16 graphs {', '.join(odd) or '(none)'}: choose one or both of "
                          f"{', '.join(FP16_GRAPHS)} (the flow and the update run FP32 in every "
                          "precision)")
    if options.fp16_fp32_tail < 0:
        raise ExportError(f"fp16_fp32_tail {options.fp16_fp32_tail}: give 0 or more convs")
    if loaded.content is None and set(options.fp16_graphs) == {"content"}:
        raise ExportError(f"{checkpoint}: has no content model, so FP16 graphs 'content' leave "
                          "nothing in FP16: choose motion")
    table = sampler_table(options.sampler, options.steps, eta=options.eta)
    frames = options.frames or cfg.train_frames
    if frames < 1:
        raise ExportError("frames must be at least 1")
    if options.fp16_weights:
        _round_to_fp16(loaded.content, loaded.motion)

    out_dir = Path(options.out_dir)
    target = out_dir / options.name
    with atomic_write(target, directory=True, ours=holds(MANIFEST)) as tmp:
        # The weights first, so that each model is freed as soon as its graphs are done, and
        # every torch model before the FP16 graphs are made (peak memory: docs/memory.md).
        save_checkpoint(tmp / "model.safetensors", cfg, loaded.content, loaded.motion)
        generators = (torch.Generator().manual_seed(1234), torch.Generator().manual_seed(5678))
        c, b = cfg.image_channels, options.batch
        graphs: dict[str, Any] = {}
        errors: dict[str, float] = {}
        checks: dict[str, Any] = {}
        networks = [("content", ContentGraph)] if loaded.content is not None else []
        if stages is not None:
            made = {"content", "motion"} if loaded.content is not None else {"motion"}
            stages(len(networks) + 2 + len(made & set(options.fp16_graphs)) + 1)
        for name, wrapper in [*networks, ("flow", FlowGraph), ("motion", MotionGraph)]:
            model = loaded.content if name == "content" else loaded.motion
            graphs[name], errors[name], check = _export_network(
                name, wrapper(model), tmp, (b, c, h, w), generators, options, say)
            if name in options.fp16_graphs:
                checks[name] = check
            if name == "content":
                loaded.content = None
            del model, check
        loaded.motion = None
        _release_memory()
        for name, check in checks.items():
            errors[f"{name}.fp16"] = _write_fp16(name, tmp, check, options, say)

        say("writing update.onnx")
        upd = tmp / "update.onnx"
        write_update_graph(upd, b, c, h, w, table.clip_x0, options.opset)
        rng = np.random.default_rng(0)
        img, out = (b, c, h, w), (b, 2 * c, h, w)
        upd_inputs = {"x": rng.standard_normal(img), "model_out": rng.standard_normal(out),
                      "coef": table.coefficients()[0], "noise": rng.standard_normal(img),
                      "x0_prev": rng.standard_normal(img)}
        upd_inputs = {k: np.asarray(v, np.float32) for k, v in upd_inputs.items()}

        def update_reference(x, model_out, coef, noise, x0_prev):
            return apply_update(table, 0, x, model_out[:, :c], model_out[:, c:], noise, x0_prev)

        errors["update"] = _max_error(_run_graph(upd, upd_inputs),
                                      update_reference(*upd_inputs.values()))
        graphs["update"] = {
            "file": upd.name,
            "inputs": {n: {"shape": list(upd_inputs[n].shape), "dtype": "float32"}
                       for n in UPDATE_INPUTS},
            "outputs": {n: {"shape": list(img), "dtype": "float32"} for n in UPDATE_OUTPUTS},
        }
        failed = {k: v for k, v in errors.items() if not v <= TOLERANCE[k]}
        if failed:
            raise ExportError(
                "validation against PyTorch failed: " + ", ".join(
                    f"{k} error {v:.2e} > {TOLERANCE[k]:.0e}" for k, v in failed.items())
                + "; nothing was written"
            )

        precisions = {
            "fp32": {name: {"file": g["file"]} for name, g in graphs.items()},
            "fp16": {name: {"file": f"{name}.fp16.onnx" if name in options.fp16_graphs
                            else g["file"]} for name, g in graphs.items()},
        }
        files = sorted({p["file"] for per in precisions.values() for p in per.values()}
                       | {"model.safetensors"})
        write_manifest(tmp, {
            "kind": "onnx",
            "name": options.name,
            "export_revision": EXPORT_REVISION,
            "config": cfg.to_dict(),
            "batch": b, "height": h, "width": w, "frames": frames,
            "frame_index": options.frame_index,
            "fp16_weights": options.fp16_weights,
            "fp16_fp32_tail": options.fp16_fp32_tail,
            "sampler": table.to_dict(),
            "graphs": graphs,
            "precisions": precisions,
            "files": files,
            "versions": {**_versions(), "onnx_opset": options.opset},
            "validation": errors,
        })
    return target, errors
