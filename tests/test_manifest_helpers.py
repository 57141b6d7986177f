"""What the runtime asks a manifest (the files of a precision, the final-steps graphs, the kind of
directory a backend accepts, the TensorRT target) and the manifest's JSON both ways, each with
its one-line refusal."""

from __future__ import annotations

import json
import re

import pytest

from vidm_rt import __version__
from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.cli.common import BUNDLED_MODEL
from vidm_rt.export.torch_only import write_torch_only
from vidm_rt.manifest import (
    GraphFile,
    Manifest,
    ManifestError,
    base_graph,
    check_tensorrt_target,
    final_graph,
    final_steps,
    load_manifest,
    precision_files,
    require_kind,
    summary,
    write_manifest,
)
from vidm_rt.manifest_schema import parse

GRAPHS = ("content", "flow", "motion", "update")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """A valid manifest's JSON object, with a file per graph."""
    out = write_torch_only(load_checkpoint(BUNDLED_MODEL), tmp_path_factory.mktemp("h") / "m")
    data = json.loads((out / "manifest.json").read_text())
    data.pop("torch_only", None)
    data["graphs"] = {g: {"file": f"{g}.onnx"} for g in GRAPHS}
    return data


def _manifest(base: dict, **fields) -> Manifest:
    return Manifest.from_dict({**base, **fields})


def _per(**files) -> dict:
    return {g: {"file": f} if isinstance(f, str) else {"file": f[0], "steps": f[1]}
            for g, f in files.items()}


def test_precision_files_of_each_layout(base) -> None:
    plain = _manifest(base)
    assert precision_files(plain, "fp32") == {g: f"{g}.onnx" for g in GRAPHS}
    fp16 = _per(content="content.onnx", flow="flow.onnx", motion="motion.fp16.onnx",
                update="update.onnx")
    int8 = _per(content="content.int8.onnx", flow="flow.onnx", motion="motion.int8.onnx",
                update="update.onnx", **{"motion.final": ("motion.onnx", 1),
                                         "content.final": ("content.onnx", 0),
                                         "other.final": ("x.onnx", 2)})
    m = _manifest(base, precisions={"fp16": fp16, "int8": int8})
    assert precision_files(m, "fp16")["motion"] == "motion.fp16.onnx"
    # Graphs first, then the final-steps graphs that run (steps > 0, of a known denoiser).
    assert list(precision_files(m, "int8").items()) == [
        ("content", "content.int8.onnx"), ("flow", "flow.onnx"), ("motion", "motion.int8.onnx"),
        ("update", "update.onnx"), ("motion.final", "motion.onnx")]
    steps = final_steps(m, "int8")
    assert steps["motion"] == 1 and "content" not in steps  # steps 0: the graph does not run
    assert final_steps(m, None) == final_steps(m, "fp32") == {}
    assert final_graph("motion") == "motion.final"
    assert base_graph("motion.final") == "motion" and base_graph("flow") == "flow"


@pytest.mark.parametrize("precisions, precision, message", [
    (None, "fp8", "unknown precision 'fp8': choose one of fp32, fp16, int8"),
    (None, "fp16", "export/x: has no fp16 graphs: create them with `vidm-rt export CKPT`"),
    (None, "int8", "export/x: has no int8 graphs: create them with `vidm-rt calibrate export/x`"),
    ({"int8": {"content": {"file": "c.onnx"}, "motion": {"file": "m.onnx"}}}, "int8",
     "export/x: int8 lacks graph[(]s[)] flow, update; re-export the model"),
])
def test_a_missing_precision_names_the_command(base, precisions, precision, message) -> None:
    with pytest.raises(ManifestError, match=message):
        precision_files(_manifest(base, precisions=precisions), precision, "export/x")


def test_engine_directories(base) -> None:
    target = {"version": "10.3.0", "gpu": "NVIDIA H100", "compute_capability": "9.0",
              "precision": "int8", "export": "export/demo"}
    graphs = {**base["graphs"], "motion.final": {"file": "motion.final.plan", "steps": 2}}
    engine = _manifest(base, kind="tensorrt", tensorrt=target, graphs=graphs)
    assert final_steps(engine, "int8") == {"motion": 2}
    require_kind(engine, "tensorrt", "engines/e", "tensorrt")
    with pytest.raises(ManifestError, match="engines/e: TensorRT engines run only with --backend "
                                            "tensorrt; the torch backend needs the export"):
        require_kind(engine, "onnx", "engines/e", "torch")
    with pytest.raises(ManifestError, match="export/x: an ONNX export, not TensorRT engines: build "
                                            "them with `vidm-rt build export/x`"):
        require_kind(_manifest(base), "tensorrt", "export/x", "tensorrt")
    check_tensorrt_target(engine.tensorrt, "engines/e", "10.3.0", "NVIDIA H100", "9.0")
    with pytest.raises(ManifestError, match=r"engines/e: built with TensorRT 10.3.0 for NVIDIA "
                                            r"H100 \(sm 9.0\); this machine has TensorRT 10.3.0 "
                                            r"on NVIDIA L4 \(sm 8.9\): run `vidm-rt build "
                                            r"export/demo --precision int8` again here"):
        check_tensorrt_target(engine.tensorrt, "engines/e", "10.3.0", "NVIDIA L4", "8.9")
    with pytest.raises(ManifestError, match=r"built with TensorRT None for None \(sm None\).*"
                                            r"`vidm-rt build export/NAME --precision fp16`"):
        check_tensorrt_target(None, "engines/e", "10.3.0", "NVIDIA L4", "8.9")


# ------------------------------------------------------------------------------------------
# Manifest <-> JSON: what from_dict refuses and what write_manifest writes
# ------------------------------------------------------------------------------------------

SHAPED = {"file": "motion.onnx", "inputs": {"x_t": {"shape": [1, 3, 32, 32], "dtype": "float32"}},
          "outputs": {"out": {"shape": [1, 6, 32, 32]}}}


@pytest.mark.parametrize("edit, message", [
    ({"format": "other"}, "manifest: not a vidm-rt manifest"),
    ({"graphs": 3}, "manifest: field 'graphs' must be an object; re-export the model"),
    ({"graphs": {"motion": {**SHAPED, "inputs": {"x_t": {"shape": "x"}}}}},
     r"field 'graphs.motion.inputs.x_t.shape' must be a list"),
    ({"graphs": {"motion": {**SHAPED, "inputs": {"x_t": {"shape": [1, "a"]}}}}},
     r"field 'graphs.motion.inputs.x_t.shape\[1\]' must be an integer, not a string"),
    ({"batch": [2]}, "field 'batch' must be an integer, not a list"),
    ({"batch": (2,)}, "field 'batch' must be an integer, not that"),  # no JSON type
    ({"sampler": {}}, "manifest: field 'sampler': sampler table dict lacks"),
])
def test_from_dict_names_the_field(base, edit, message) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict({**base, **edit})
    with pytest.raises(ManifestError, match="manifest: not a vidm-rt manifest"):
        Manifest.from_dict([base])


def test_to_dict_round_trips_shapes_nulls_and_unknown_fields(base) -> None:
    m = Manifest.from_dict({**base, "graphs": {"motion": SHAPED}, "frames": None, "later": [1]})
    assert m.frames is None and "format" not in m.extra
    d = m.to_dict()
    assert d["graphs"]["motion"] == SHAPED | {"outputs": {"out": {"shape": [1, 6, 32, 32],
                                                                    "dtype": "float32"}}}
    assert d["later"] == [1] and "extra" not in d and "frames" not in d
    assert Manifest.from_dict(d).to_dict() == d


def test_write_manifest_writes_sorted_indented_json_with_its_version(base, tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"w")
    write_manifest(tmp_path, {**base, "files": ["model.safetensors"]})
    text = (tmp_path / "manifest.json").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True)
    assert data["format"] == "vidm-rt" and data["format_version"] == 1
    assert data["vidm_rt_version"] == __version__
    with pytest.raises(ManifestError, match=f"{tmp_path / 'manifest.json'}: field 'batch'"):
        write_manifest(tmp_path, {**base, "batch": "two"})


def test_more_refusals_name_their_fix(base, tmp_path) -> None:
    assert Manifest.from_dict({**base, "files": ["a.onnx"]}).files == {"a.onnx": ""}
    with pytest.raises(ManifestError, match="missing field 'tensorrt' of TensorRT engines; "
                                            "rebuild them with `vidm-rt build`"):
        Manifest.from_dict({**base, "kind": "tensorrt"})
    with pytest.raises(ManifestError, match="manifest: field 'config' must be an object"):
        Manifest.from_dict({**base, "config": 3})
    with pytest.raises(ManifestError, match="^src: not a JSON object; fix it$"):
        parse(GraphFile, [1], "src", "fix it")
    with pytest.raises(ManifestError, match="^DIR: has no fp16 graphs"):
        precision_files(_manifest(base), "fp16")


def test_the_fp32_final_steps_are_the_default_and_any_denoiser_name_works(base) -> None:
    per = _per(content="content.onnx", flow="flow.onnx", motion="motion.onnx",
               update="update.onnx", **{"content.final": ("content.onnx", 2)})
    m = _manifest(base, precisions={"fp32": per})
    assert final_steps(m, None) == {"content": 2}
    assert precision_files(m, "fp32")["content.final"] == "content.onnx"
    assert base_graph("content.final") == "content"


@pytest.mark.parametrize("name, hint", [
    *[(f"model{s}", "export it first: `vidm-rt export") for s in (".safetensors", ".pt", ".pth",
                                                                  ".tar")],
    ("notes.txt", "pass the folder that `vidm-rt export` or `vidm-rt build` wrote"),
])
def test_a_file_given_as_the_directory_gets_a_hint(tmp_path, name, hint) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ManifestError, match=f"{name}: is a file, not an export or engine folder; "
                                            f"{re.escape(hint)}"):
        load_manifest(tmp_path / name)


def _written(base: dict, tmp_path, **fields):
    (tmp_path / "model.safetensors").write_bytes(b"w")
    write_manifest(tmp_path, {**base, "files": ["model.safetensors"], **fields})
    return json.loads((tmp_path / "manifest.json").read_text())


def test_rewriting_an_old_manifest_stamps_this_version(base, tmp_path) -> None:
    data = _written(base, tmp_path, vidm_rt_version="0.0.1", format_version=0)
    assert data["vidm_rt_version"] == __version__ and data["format_version"] == 1


@pytest.mark.parametrize("writer, shown", [({"vidm_rt_version": "9.9"}, "9.9"), ({}, "?")])
def test_a_newer_format_names_the_version_that_wrote_it(base, tmp_path, writer, shown) -> None:
    data = {k: v for k, v in _written(base, tmp_path).items() if k != "vidm_rt_version"}
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "format_version": 2, **writer}))
    with pytest.raises(ManifestError, match=re.escape(
            f"manifest format 2 was written by vidm-rt {shown}; this vidm-rt {__version__} "
            "reads format 1: export the model again with this version")):
        load_manifest(tmp_path)


def test_every_unhashed_file_is_named(base, tmp_path) -> None:
    data = _written(base, tmp_path)
    data["precisions"] = {"fp32": {"motion": {"file": "b.onnx"}, "flow": {"file": "a.onnx"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="a.onnx, b.onnx not hashed in the manifest; "
                                            "re-export the model$"):
        load_manifest(tmp_path)


def test_summary_lines(base, tmp_path) -> None:
    data = _written(base, tmp_path, graphs={g: {"file": f"{g}.onnx"} for g in GRAPHS},
                    precisions={"fp32": _per(**{g: f"{g}.onnx" for g in GRAPHS}),
                                "fp16": _per(**{**{g: f"{g}.onnx" for g in GRAPHS},
                                                "motion": "motion.fp16.onnx",
                                                "motion.final": ("motion.onnx", 1)})})
    # The plain sampler line first: a config without the training-set sampling options.
    data["config"] = {**data["config"], "cond_noise": 0.0, "prev_input": False}
    m = Manifest.from_dict(data)
    cfg = m.config
    size = (tmp_path / "model.safetensors").stat().st_size / 2**20
    head = [f"{tmp_path} (ONNX export): {cfg.name} model, content + motion",
            f"video: {m.width}x{m.height}, {m.default_frames} frames by default, batch {m.batch}, "
            f"frame index clamp (trained on {cfg.train_frames} frames)",
            f"sampler: {m.sampler.sampler}, {m.sampler.steps} steps per frame "
            f"({m.sampler.spacing})"]
    tail = f"size: {size:.1f} MiB in 1 files (`vidm-rt info DIR --json` prints the whole manifest)"
    assert summary(m, tmp_path) == [*head, "precisions: fp16 (motion), fp32",
                                    "runs on: onnxruntime, torch; tensorrt after `vidm-rt build`",
                                    tail]
    noisy = Manifest.from_dict({**data, "config": {**data["config"], "cond_noise": 0.1}})
    assert summary(noisy, tmp_path)[2].endswith(
        ", conditioning noise 0.1 on each previous frame (set by training)")
    reads = Manifest.from_dict({**data, "config": {**data["config"], "prev_input": True}})
    assert summary(reads, tmp_path)[2].endswith(
        "; the motion model reads the previous frame beside the flow")
    target = {"version": "10.3.0", "gpu": "NVIDIA H100", "compute_capability": "9.0",
              "precision": "int8"}
    engine = Manifest.from_dict({**data, "kind": "tensorrt", "tensorrt": target})
    assert summary(engine, tmp_path)[0] == (f"{tmp_path} (TensorRT engines): {cfg.name} model, "
                                            "content + motion")
    assert summary(engine, tmp_path)[3:5] == [
        "precision: int8", "runs on: tensorrt 10.3.0 on NVIDIA H100 (compute capability 9.0) only"]


def test_summary_precision_and_size_lines(base, tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(bytes(3 << 20))
    write_manifest(tmp_path, {**base, "files": ["model.safetensors"]})
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert summary(Manifest.from_dict(data), tmp_path)[3:] == [
        "precisions: fp32", "runs on: onnxruntime, torch; tensorrt after `vidm-rt build`",
        "size: 3.0 MiB in 1 files (`vidm-rt info DIR --json` prints the whole manifest)"]
    same = _per(**{g: f"{g}.onnx" for g in GRAPHS})
    layouts = {"fp32": {**same, "motion.final": {"file": "motion.final.onnx", "steps": 1}},
               "fp16": {**same, "content": {"file": "c16.onnx"}, "motion": {"file": "m16.onnx"}},
               "int8": same}
    m = Manifest.from_dict({**data, "precisions": layouts})
    # fp32 never lists graphs, a precision without reduced graphs lists none.
    assert summary(m, tmp_path)[3] == "precisions: fp16 (content, motion), fp32, int8"
