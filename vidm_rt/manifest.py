"""The manifest of an export or engine directory (standard library only).

"precisions" lists, per precision, the file of every graph of "graphs" (a graph kept in FP32
points at the FP32 file); `vidm-rt export` writes fp32 and fp16, `vidm-rt calibrate` adds int8.
A precision may also name a final-steps graph "<denoiser>.final" with {"file", "steps"}: the last
`steps` sampler steps of that denoiser run it instead (INT8 runs its last step on the FP32 graph,
docs/precision.md). An engine directory built for one precision lists such a graph under "graphs",
with the denoiser's inputs and outputs and its "steps".
Graph inputs and outputs are FP32 in every precision. Exports older than "precisions" have
only fp32, the files of "graphs".

One format describes both: `export/<name>/` (ONNX graphs, run directly by ONNX Runtime) and
`engines/<name>/` (TensorRT plans). Everything that loads such a directory calls
`load_manifest`, which checks the format version, that every listed file exists, and that its
sha256 matches, before any graph is touched.

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
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_text

MANIFEST = "manifest.json"
FORMAT = "vidm-rt"
FORMAT_VERSION = 1


PRECISIONS = ("fp32", "fp16", "int8")
FINAL = ".final"  # suffix of a final-steps graph (see the module docstring)
# The command that adds each precision to an export directory.
PRECISION_COMMANDS = {"fp32": "vidm-rt export CKPT", "fp16": "vidm-rt export CKPT",
                      "int8": "vidm-rt calibrate {directory}"}


class ManifestError(ValueError):
    """An engine or export directory that cannot be used as it is."""


def precision_files(manifest: dict[str, Any], precision: str,
                    directory: str | Path = "DIR") -> dict[str, str]:
    """{graph: file} of `precision`; ManifestError naming the command that creates it if absent."""
    if precision not in PRECISIONS:
        raise ManifestError(f"unknown precision {precision!r}: choose one of "
                            f"{', '.join(PRECISIONS)}")
    per = manifest.get("precisions", {}).get(precision)
    if per is None and precision == "fp32":
        return {graph: spec["file"] for graph, spec in manifest["graphs"].items()}
    if per is None:
        command = PRECISION_COMMANDS[precision].format(directory=directory)
        raise ManifestError(f"{directory}: has no {precision} graphs: create them with "
                            f"`{command}`")
    missing = set(manifest["graphs"]) - set(per)
    if missing:
        raise ManifestError(f"{directory}: {precision} lacks graph(s) {', '.join(sorted(missing))}"
                            "; re-export the model")
    finals = [g for g in per if g.endswith(FINAL) and g[:-len(FINAL)] in manifest["graphs"]
              and int(per[g].get("steps", 0)) > 0]
    return {graph: per[graph]["file"] for graph in [*manifest["graphs"], *finals]}


def final_graph(denoiser: str) -> str:
    """The name of the graph that runs `denoiser`'s final steps."""
    return denoiser + FINAL


def base_graph(graph: str) -> str:
    """The denoiser a final-steps graph stands in for (any other graph: itself)."""
    return graph[:-len(FINAL)] if graph.endswith(FINAL) else graph


def final_steps(manifest: dict[str, Any], precision: str | None) -> dict[str, int]:
    """{denoiser: K}: the last K sampler steps of that denoiser run its final-steps graph.
    An export directory says so per precision (default fp32), an engine directory in its
    graphs."""
    if manifest.get("kind", "onnx") == "onnx":
        graphs = manifest.get("precisions", {}).get(precision or "fp32", {})
    else:
        graphs = manifest["graphs"]
    return {base_graph(g): int(spec["steps"]) for g, spec in graphs.items()
            if g.endswith(FINAL) and int(spec.get("steps", 0)) > 0}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Hash every file listed under "files" (relative paths) and write manifest.json atomically."""
    directory = Path(directory)
    manifest = dict(manifest)
    manifest.update(format=FORMAT, format_version=FORMAT_VERSION, vidm_rt_version=__version__)
    manifest["files"] = {name: sha256_file(directory / name) for name in manifest["files"]}
    return write_text(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def load_manifest(directory: str | Path, verify_hashes: bool = True) -> dict[str, Any]:
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
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e}); re-export the model") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a vidm-rt manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: manifest format {version} was written by vidm-rt "
            f"{manifest.get('vidm_rt_version', '?')}; this vidm-rt {__version__} reads format "
            f"{FORMAT_VERSION}: export the model again with this version"
        )
    for key in ("config", "batch", "height", "width", "sampler", "graphs", "files"):
        if key not in manifest:
            raise ManifestError(f"{path}: missing field {key!r}; re-export the model")
    listed = {spec["file"] for per in manifest.get("precisions", {}).values()
              for spec in per.values()} - set(manifest["files"])
    if listed:
        raise ManifestError(f"{path}: {', '.join(sorted(listed))} not hashed in the manifest; "
                            "re-export the model")
    for name, digest in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise ManifestError(f"{directory}: {name} is listed in the manifest but missing")
        if verify_hashes and sha256_file(file) != digest:
            raise ManifestError(
                f"{directory}: {name} does not match its sha256 in the manifest (modified or "
                "corrupted): export the model again"
            )
    return manifest


# Which command creates the graphs of each reduced precision (the "precisions" contract).
def require_kind(manifest: dict[str, Any], kind: str, directory: str | Path, backend: str) -> None:
    """Refuse an engine directory of the wrong kind for a backend (ONNX export vs TensorRT)."""
    found = manifest.get("kind", "onnx")
    if found == kind:
        return
    if kind == "tensorrt":
        raise ManifestError(f"{directory}: an ONNX export, not TensorRT engines: build them with "
                            f"`vidm-rt build {directory}`, or use --backend onnxruntime")
    raise ManifestError(f"{directory}: TensorRT engines run only with --backend tensorrt; the "
                        f"{backend} backend needs the export directory they were built from")


def check_tensorrt_target(manifest: dict[str, Any], directory: str | Path, tensorrt_version: str,
                          gpu_name: str, compute_capability: str) -> None:
    """TensorRT plans run only with the TensorRT version and on the GPU they were built with."""
    built = manifest.get("tensorrt") or {}
    want = (built.get("version"), built.get("gpu"), built.get("compute_capability"))
    have = (tensorrt_version, gpu_name, compute_capability)
    if want != have:
        source = built.get("export", "export/NAME")
        precision = built.get("precision", "fp16")
        raise ManifestError(
            f"{directory}: built with TensorRT {want[0]} for {want[1]} (sm {want[2]}); this "
            f"machine has TensorRT {have[0]} on {have[1]} (sm {have[2]}): run "
            f"`vidm-rt build {source} --precision {precision}` again here")


def summary(manifest: dict[str, Any], directory: str | Path) -> list[str]:
    """A few lines a user reads: model, size, schedule, precisions, backends, disk size."""
    directory = Path(directory)
    cfg = manifest["config"]
    graphs = manifest["graphs"]
    models = " + ".join(g for g in ("content", "motion") if g in graphs)
    kind = manifest["kind"]
    table = manifest["sampler"]
    size = sum((directory / f).stat().st_size for f in manifest["files"]
               if (directory / f).is_file())
    lines = [
        f"{directory} ({'ONNX export' if kind == 'onnx' else 'TensorRT engines'}): "
        f"{cfg.get('name', 'custom')} model, {models}",
        f"video: {manifest['width']}x{manifest['height']}, {manifest['frames']} frames by "
        f"default, batch {manifest['batch']}, frame index {manifest.get('frame_index', 'clamp')}"
        f" (trained on {cfg['train_frames']} frames)",
        f"sampler: {table['sampler']}, {table['steps']} steps per frame ({table['spacing']})",
    ]
    if kind == "onnx":
        precisions = []
        for p, files in sorted(manifest.get("precisions", {"fp32": {}}).items()):
            reduced = [g for g, f in files.items() if f["file"] != graphs[g]["file"]]
            precisions.append(f"{p} ({', '.join(reduced)})" if reduced and p != "fp32" else p)
        lines.append(f"precisions: {', '.join(precisions)}")
        lines.append("runs on: onnxruntime, torch; tensorrt after `vidm-rt build`")
    else:
        trt = manifest["tensorrt"]
        lines.append(f"precision: {trt['precision']}")
        lines.append(f"runs on: tensorrt {trt['version']} on {trt['gpu']} (compute "
                     f"capability {trt['compute_capability']}) only")
    lines.append(f"size: {size / 2**20:.1f} MiB in {len(manifest['files'])} files "
                 "(`vidm-rt info DIR --json` prints the whole manifest)")
    return lines
