"""The manifest of an export or engine directory: `Manifest`, read once by `load_manifest` and
written by `write_manifest`.

One format describes both: `export/<name>/` (ONNX graphs, run directly by ONNX Runtime) and
`engines/<name>/` (TensorRT plans). Everything that loads such a directory calls
`load_manifest`, which checks the format version, every field's type, that every listed file
exists and that its sha256 matches, before any graph is touched; a problem is one line naming
the file and the field. Readers then use attributes (`manifest.graphs["motion"].file`), never
keys. The C API's parser (cpp/src/manifest.cpp) checks the same format version.

"precisions" lists, per precision, the file of every graph of "graphs" (a graph kept in FP32
points at the FP32 file); `vidm-rt export` writes fp32 and fp16, `vidm-rt calibrate` adds int8.
A precision may also name a final-steps graph "<denoiser>.final" with {"file", "steps"}: the last
`steps` sampler steps of that denoiser run it instead (INT8 runs its last step on the FP32 graph,
docs/precision.md). An engine directory built for one precision lists such a graph under "graphs",
with the denoiser's inputs and outputs and its "steps".
Graph inputs and outputs are FP32 in every precision. Exports older than "precisions" have
only fp32, the files of "graphs".

    {
      "format": "vidm-rt", "format_version": 1, "vidm_rt_version": "...", "kind": "onnx",
      "name": "...", "export_revision": N (vidm_rt.export.EXPORT_REVISION; optional),
      "config": {VIDMConfig}, "batch": B, "height": H, "width": W,
      "frames": F (default video length), "frame_index": "clamp" | "extrapolate",
      "fp16_weights": true if the weights were rounded to FP16 before export (optional),
      "sampler": {SamplerTable.to_dict()},
      "graphs": {"content" | "motion" | "flow" | "update":
                 {"file": "...", "inputs": {name: {"shape": [...], "dtype": "float32"}},
                  "outputs": {...}}},
      "precisions": {"fp32" | "fp16" | "int8": {graph: {"file": "..."},
                                               "motion.final": {"file": "...", "steps": K}}},
      "files": {"relative/path": "sha256 hex"},
      "versions": {...}, "validation": {graph: max abs error}
    }

A new optional field is one line in its dataclass below, with a default: older manifests then
load with the default, and the JSON format stays the same. Fields this version does not know
are kept (`extra`) and written back unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_text
from .manifest_schema import ManifestError, parse, plain_fields
from .schedule import FRAME_INDEX_POLICIES, SamplerTable

MANIFEST = "manifest.json"
FORMAT = "vidm-rt"
FORMAT_VERSION = 1

PRECISIONS = ("fp32", "fp16", "int8")
FINAL = ".final"  # suffix of a final-steps graph (see the module docstring)
# The command that adds each precision to an export directory.
PRECISION_COMMANDS = {"fp32": "vidm-rt export CKPT", "fp16": "vidm-rt export CKPT",
                      "int8": "vidm-rt calibrate {directory}"}
FIX = "re-export the model"


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class GraphSpec:
    """A graph of the directory; an engine's also says what it was built from and how."""

    file: str | None = None            # None: a torch-only directory names graphs, has no files
    inputs: Mapping[str, TensorSpec] = field(default_factory=dict)
    outputs: Mapping[str, TensorSpec] = field(default_factory=dict)
    steps: int | None = None           # a final-steps graph: how many last steps it runs
    source: str | None = None          # engines: the ONNX file it was built from
    precision: str | None = None       # engines: the precision it was built in
    fp32_layers: int | None = None     # engines, weakly typed: layers pinned to FP32
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphFile:
    """One graph's file in a precision (and, for a final-steps graph, its steps)."""

    file: str
    steps: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    """What the runtime reads of the model's config; the whole VIDMConfig stays in `extra`."""

    train_frames: int
    name: str = "custom"
    image_channels: int = 3
    cond_noise: float = 0.0
    prev_input: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cond_channels(self) -> int:
        """Channels of the flow stage's output (vidm_rt.config.VIDMConfig.cond_channels)."""
        return 2 + (self.image_channels if self.prev_input else 0)


@dataclass(frozen=True)
class TensorRTTarget:
    """What an engine directory's plans were built with: they run only there."""

    version: str
    gpu: str
    compute_capability: str
    precision: str = "fp16"
    export: str = "export/NAME"
    strongly_typed: bool | None = None
    dla_core: int | None = None
    workspace_mb: int | None = None
    opt_level: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """One export or engine directory's manifest (the module docstring shows its JSON)."""

    config: ModelConfig
    batch: int
    height: int
    width: int
    sampler: SamplerTable
    graphs: Mapping[str, GraphSpec]
    files: Mapping[str, str]           # relative path -> sha256 (hashed by write_manifest)
    kind: str = "onnx"
    name: str = ""
    frames: int | None = None          # default video length; None: the training length
    frame_index: str = "clamp"
    precisions: Mapping[str, Mapping[str, GraphFile]] | None = None
    fp16_weights: bool = False
    fp16_fp32_tail: int | None = None
    export_revision: int | None = None
    torch_only: bool = False
    tensorrt: TensorRTTarget | None = None
    versions: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, float] = field(default_factory=dict)
    quantization: Mapping[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    vidm_rt_version: str = __version__
    extra: Mapping[str, Any] = field(default_factory=dict)   # fields this version does not know

    @property
    def default_frames(self) -> int:
        return self.frames or self.config.train_frames

    @property
    def has_content(self) -> bool:
        return "content" in self.graphs

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (what write_manifest writes, before hashing)."""
        return {"format": FORMAT, **plain_fields(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "manifest") -> Manifest:
        """Parse and check a manifest's JSON object; ManifestError names `source` and the field."""
        if not isinstance(data, Mapping) or data.get("format", FORMAT) != FORMAT:
            raise ManifestError(f"{source}: not a vidm-rt manifest")
        data = dict(data)
        data.pop("format", None)
        if isinstance(data.get("files"), list | tuple):   # names to hash, from a writer
            data["files"] = dict.fromkeys(data["files"], "")
        manifest = parse(cls, data, str(source), FIX, {SamplerTable: _sampler})
        if manifest.frame_index not in FRAME_INDEX_POLICIES:
            raise ManifestError(f"{source}: field 'frame_index' is {manifest.frame_index!r}, not "
                                f"{' or '.join(FRAME_INDEX_POLICIES)}; {FIX}")
        if manifest.kind == "tensorrt" and manifest.tensorrt is None:
            raise ManifestError(f"{source}: missing field 'tensorrt' of TensorRT engines; rebuild "
                                "them with `vidm-rt build`")
        return manifest


def _sampler(value: Any, where: str) -> SamplerTable:
    try:
        return SamplerTable.from_dict(value)
    except (ValueError, TypeError, KeyError) as e:
        raise ManifestError(f"{where}: {e}; {FIX}") from None


def precision_files(manifest: Manifest, precision: str,
                    directory: str | Path = "DIR") -> dict[str, str]:
    """{graph: file} of `precision`; ManifestError naming the command that creates it if absent."""
    if precision not in PRECISIONS:
        raise ManifestError(f"unknown precision {precision!r}: choose one of "
                            f"{', '.join(PRECISIONS)}")
    per = (manifest.precisions or {}).get(precision)
    if per is None and precision == "fp32":
        return {graph: spec.file for graph, spec in manifest.graphs.items()}
    if per is None:
        command = PRECISION_COMMANDS[precision].format(directory=directory)
        raise ManifestError(f"{directory}: has no {precision} graphs: create them with "
                            f"`{command}`")
    missing = set(manifest.graphs) - set(per)
    if missing:
        raise ManifestError(f"{directory}: {precision} lacks graph(s) {', '.join(sorted(missing))}"
                            "; re-export the model")
    finals = [g for g in per if g.endswith(FINAL) and g[:-len(FINAL)] in manifest.graphs
              and (per[g].steps or 0) > 0]
    return {graph: per[graph].file for graph in [*manifest.graphs, *finals]}


def final_graph(denoiser: str) -> str:
    """The name of the graph that runs `denoiser`'s final steps."""
    return denoiser + FINAL


def base_graph(graph: str) -> str:
    """The denoiser a final-steps graph stands in for (any other graph: itself)."""
    return graph[:-len(FINAL)] if graph.endswith(FINAL) else graph


def final_steps(manifest: Manifest, precision: str | None) -> dict[str, int]:
    """{denoiser: K}: the last K sampler steps of that denoiser run its final-steps graph.
    An export directory says so per precision (default fp32), an engine directory in its
    graphs."""
    graphs: Mapping[str, GraphFile | GraphSpec] = manifest.graphs
    if manifest.kind == "onnx":
        graphs = (manifest.precisions or {}).get(precision or "fp32", {})
    return {base_graph(g): spec.steps for g, spec in graphs.items()
            if g.endswith(FINAL) and (spec.steps or 0) > 0}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path, manifest: Manifest | Mapping[str, Any]) -> Path:
    """Check `manifest` (a Manifest, or its JSON object whose "files" may be just the names),
    hash every file it lists (relative paths) and write manifest.json atomically."""
    directory = Path(directory)
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_dict(manifest, directory / MANIFEST)
    data = manifest.to_dict()
    data.update(format_version=FORMAT_VERSION, vidm_rt_version=__version__)
    data["files"] = {name: sha256_file(directory / name) for name in manifest.files}
    return write_text(directory / MANIFEST, json.dumps(data, indent=2, sort_keys=True))


def load_manifest(directory: str | Path, verify_hashes: bool = True) -> Manifest:
    """Read and check a directory's manifest; raises ManifestError naming the problem and fix."""
    directory = Path(directory)
    if directory.is_file():
        hint = (f"export it first: `vidm-rt export {directory}`, then pass export/NAME"
                if directory.suffix in (".safetensors", ".pt", ".pth", ".tar") else
                "pass the folder that `vidm-rt export` or `vidm-rt build` wrote")
        raise ManifestError(f"{directory}: is a file, not an export or engine folder; {hint}")
    if not directory.is_dir():
        raise ManifestError(
            f"{directory}: no such engine directory (create one with `vidm-rt export CKPT`)"
        )
    path = directory / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{directory}: no {MANIFEST}: not an export or engine directory")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e}); re-export the model") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a vidm-rt manifest")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: manifest format {version} was written by vidm-rt "
            f"{data.get('vidm_rt_version', '?')}; this vidm-rt {__version__} reads format "
            f"{FORMAT_VERSION}: export the model again with this version"
        )
    manifest = Manifest.from_dict(data, path)
    listed = {spec.file for per in (manifest.precisions or {}).values()
              for spec in per.values()} - set(manifest.files)
    if listed:
        raise ManifestError(f"{path}: {', '.join(sorted(listed))} not hashed in the manifest; "
                            "re-export the model")
    for name, digest in manifest.files.items():
        file = directory / name
        if not file.is_file():
            raise ManifestError(f"{directory}: {name} is listed in the manifest but missing")
        if verify_hashes and sha256_file(file) != digest:
            raise ManifestError(
                f"{directory}: {name} does not match its sha256 in the manifest (modified or "
                "corrupted): export the model again"
            )
    return manifest


def require_kind(manifest: Manifest, kind: str, directory: str | Path, backend: str) -> None:
    """Refuse an engine directory of the wrong kind for a backend (ONNX export vs TensorRT)."""
    if manifest.kind == kind:
        return
    if kind == "tensorrt":
        raise ManifestError(f"{directory}: an ONNX export, not TensorRT engines: build them with "
                            f"`vidm-rt build {directory}`, or use --backend onnxruntime")
    raise ManifestError(f"{directory}: TensorRT engines run only with --backend tensorrt; the "
                        f"{backend} backend needs the export directory they were built from")


def check_tensorrt_target(built: TensorRTTarget | None, directory: str | Path,
                          tensorrt_version: str, gpu_name: str, compute_capability: str) -> None:
    """TensorRT plans run only with the TensorRT version and on the GPU they were built with
    (`built`: the manifest's "tensorrt")."""
    want = (built.version, built.gpu, built.compute_capability) if built else (None,) * 3
    have = (tensorrt_version, gpu_name, compute_capability)
    if want != have:
        source = built.export if built else "export/NAME"
        precision = built.precision if built else "fp16"
        raise ManifestError(
            f"{directory}: built with TensorRT {want[0]} for {want[1]} (sm {want[2]}); this "
            f"machine has TensorRT {have[0]} on {have[1]} (sm {have[2]}): run "
            f"`vidm-rt build {source} --precision {precision}` again here")


def summary(manifest: Manifest, directory: str | Path) -> list[str]:
    """A few lines a user reads: model, size, schedule, precisions, backends, disk size."""
    directory = Path(directory)
    cfg, graphs, table = manifest.config, manifest.graphs, manifest.sampler
    models = " + ".join(g for g in ("content", "motion") if g in graphs)
    size = sum((directory / f).stat().st_size for f in manifest.files
               if (directory / f).is_file())
    lines = [
        f"{directory} ({'ONNX export' if manifest.kind == 'onnx' else 'TensorRT engines'}): "
        f"{cfg.name} model, {models}",
        f"video: {manifest.width}x{manifest.height}, {manifest.default_frames} frames by "
        f"default, batch {manifest.batch}, frame index {manifest.frame_index}"
        f" (trained on {cfg.train_frames} frames)",
        f"sampler: {table.sampler}, {table.steps} steps per frame ({table.spacing})"
        + (f", conditioning noise {cfg.cond_noise} on each previous frame (set by training)"
           if cfg.cond_noise else "")
        + ("; the motion model reads the previous frame beside the flow" if cfg.prev_input
           else ""),
    ]
    if manifest.tensorrt is None:
        precisions = []
        for p, files in sorted((manifest.precisions or {"fp32": {}}).items()):
            reduced = [g for g, f in files.items() if f.file != graphs[base_graph(g)].file]
            precisions.append(f"{p} ({', '.join(reduced)})" if reduced and p != "fp32" else p)
        lines.append(f"precisions: {', '.join(precisions)}")
        lines.append("runs on: onnxruntime, torch; tensorrt after `vidm-rt build`")
    else:
        trt = manifest.tensorrt
        lines.append(f"precision: {trt.precision}")
        lines.append(f"runs on: tensorrt {trt.version} on {trt.gpu} (compute "
                     f"capability {trt.compute_capability}) only")
    lines.append(f"size: {size / 2**20:.1f} MiB in {len(manifest.files)} files "
                 "(`vidm-rt info DIR --json` prints the whole manifest)")
    return lines
