"""The Python manifest loader refuses every broken engine directory with its own message.

The cases mirror the C++ port's (cpp/tests/test_manifest.cpp): each edits one thing of a valid
directory and expects the one-line error that names it. The valid directory is the torch-only
kind (weights + manifest, written in well under a second), so no ONNX export is needed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.cli.common import BUNDLED_MODEL
from vidm_rt.export.torch_only import write_torch_only
from vidm_rt.manifest import ManifestError, load_manifest, write_manifest
from vidm_rt.schedule import sampler_table

MiB = 1 << 20


@pytest.fixture(scope="module")
def valid_dir(tmp_path_factory) -> Path:
    out = write_torch_only(load_checkpoint(BUNDLED_MODEL), tmp_path_factory.mktemp("m") / "ok")
    # The weights must span more than one hash block so a hash over a prefix is caught.
    assert (out / "model.safetensors").stat().st_size > 2 * MiB
    return out


@pytest.fixture
def copy(valid_dir, tmp_path) -> Path:
    return Path(shutil.copytree(valid_dir, tmp_path / "dir"))


def _edit(directory: Path, edit: Callable[[dict], None]) -> None:
    path = directory / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_valid_directory_loads(valid_dir) -> None:
    m = load_manifest(valid_dir)
    digest = hashlib.sha256((valid_dir / "model.safetensors").read_bytes()).hexdigest()
    assert m.files == {"model.safetensors": digest}


def _pop(key: str) -> Callable[[dict], None]:
    return lambda m: m.pop(key)


EDITS = [
    ("not a vidm-rt manifest", lambda m: m.update(format="other")),
    ("manifest format 2 was written by vidm-rt", lambda m: m.update(format_version=2)),
    ("manifest format None", _pop("format_version")),
    *[(f"missing field {key!r}", _pop(key))
      for key in ("config", "batch", "height", "width", "sampler", "graphs", "files")],
    # A precision pointing at a file the "files" table does not hash could be swapped unnoticed.
    ("extra.onnx not hashed in the manifest",
     lambda m: m.update(precisions={"fp32": {"motion": {"file": "extra.onnx"}}})),
    ("ghost.onnx is listed in the manifest but missing",
     lambda m: m["files"].update({"ghost.onnx": "0" * 64})),
    ("model.safetensors does not match its sha256",
     lambda m: m["files"].update({"model.safetensors": "0" * 64})),
]


@pytest.mark.parametrize("expected, edit", EDITS, ids=[e[0][:40] for e in EDITS])
def test_each_broken_manifest_field_is_named(copy, expected, edit) -> None:
    _edit(copy, edit)
    with pytest.raises(ManifestError, match=expected.replace("(", r"\(")) as err:
        load_manifest(copy)
    assert "\n" not in str(err.value)


def test_directory_level_errors(copy, tmp_path) -> None:
    with pytest.raises(ManifestError, match="no such engine directory"):
        load_manifest(tmp_path / "absent")
    with pytest.raises(ManifestError, match="is a file, not an export or engine folder; export "
                                            "it first"):
        load_manifest(copy / "model.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_manifest(tmp_path / "empty")
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(copy)
    (copy / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ManifestError, match="not a vidm-rt manifest"):
        load_manifest(copy)


def test_a_deleted_file_is_named_even_without_hash_checks(copy) -> None:
    (copy / "model.safetensors").unlink()
    for verify in (True, False):
        with pytest.raises(ManifestError, match="model.safetensors is listed in the manifest but "
                                                "missing"):
            load_manifest(copy, verify_hashes=verify)


@pytest.mark.parametrize("offset", [0, MiB - 1, MiB, 2 * MiB + 7, -1])
def test_a_changed_byte_anywhere_in_a_file_fails_the_hash(copy, offset) -> None:
    """Positions at and past the 1 MiB read block: a hash over a prefix lets the later ones
    through (the runtime then fails on the corrupt weights instead, with a worse message)."""
    path = copy / "model.safetensors"
    _flip_byte(path, offset if offset >= 0 else path.stat().st_size - 1)
    with pytest.raises(ManifestError, match="model.safetensors does not match its sha256 in the "
                                            "manifest .modified or corrupted.: export the model "
                                            "again"):
        load_manifest(copy)
    load_manifest(copy, verify_hashes=False)  # only the hash check looks at the content


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 3 * MiB), min_size=1, max_size=3), data=st.data())
def test_write_then_load_round_trips_and_any_flipped_byte_is_caught(tmp_path_factory, sizes,
                                                                    data) -> None:
    directory = tmp_path_factory.mktemp("rt")
    names = [f"f{i}.bin" for i in range(len(sizes))]
    for name, size in zip(names, sizes, strict=True):
        (directory / name).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    table = sampler_table("ddim", 3)
    fields = {"config": {"name": "t", "train_frames": 8}, "batch": 1, "height": 8, "width": 8,
              "sampler": table.to_dict(), "graphs": {}, "kind": "onnx"}
    write_manifest(directory, {**fields, "files": names})
    loaded = load_manifest(directory)
    assert (loaded.config.name, loaded.config.train_frames, loaded.batch, loaded.height,
            loaded.width, loaded.graphs, loaded.kind) == ("t", 8, 1, 8, 8, {}, "onnx")
    assert loaded.sampler.to_dict() == fields["sampler"]
    assert loaded.files == {n: hashlib.sha256((directory / n).read_bytes()).hexdigest()
                               for n in names}
    nonempty = [n for n, s in zip(names, sizes, strict=True) if s > 0]
    if nonempty:
        name = data.draw(st.sampled_from(nonempty))
        offset = data.draw(st.integers(0, (directory / name).stat().st_size - 1))
        _flip_byte(directory / name, offset)
        with pytest.raises(ManifestError, match=f"{name} does not match its sha256"):
            load_manifest(directory)


# ---- the typed Manifest: fields checked once at load, unknown fields kept -------------------


@pytest.mark.parametrize("edit, key, problem", [
    (lambda m: m.update(batch="2"), "batch", "must be an integer, not a string"),
    (lambda m: m["config"].update(train_frames=8.5), "config.train_frames", "must be an integer"),
    (lambda m: m["graphs"].update(motion={"file": 3}), "graphs.motion.file", "must be a string"),
    (lambda m: m.update(precisions={"fp16": {"motion": {}}}), "precisions.fp16.motion.file",
     "missing"),
    (lambda m: m.update(kind="tensorrt"), "tensorrt", "missing"),
    (lambda m: m.update(frame_index="wrap"), "frame_index", "'wrap', not clamp or extrapolate"),
])
def test_a_field_of_the_wrong_type_is_named_at_load(copy, edit, key, problem) -> None:
    _edit(copy, edit)
    with pytest.raises(ManifestError) as err:
        load_manifest(copy)
    message = str(err.value)
    assert message.startswith(f"{copy / 'manifest.json'}: ") and repr(key) in message
    assert problem in message


def test_fields_this_version_does_not_know_survive_a_rewrite(copy) -> None:
    _edit(copy, lambda m: (m.update(later_field={"a": [1, 2]}),
                           m["config"].update(later_knob=0.5)))
    write_manifest(copy, load_manifest(copy))
    raw = json.loads((copy / "manifest.json").read_text())
    assert raw["later_field"] == {"a": [1, 2]} and raw["config"]["later_knob"] == 0.5
    assert load_manifest(copy).extra["later_field"] == {"a": [1, 2]}


def test_optional_fields_of_older_exports_take_their_defaults(copy) -> None:
    _edit(copy, lambda m: [m.pop(k, None) for k in ("frames", "frame_index", "kind", "name",
                                                    "torch_only", "fp16_weights", "versions")])
    m = load_manifest(copy)
    assert (m.kind, m.frame_index, m.fp16_weights, m.precisions) == ("onnx", "clamp", False, None)
    assert m.default_frames == m.config.train_frames


def test_the_c_parser_reads_the_same_format_version() -> None:
    import re

    from vidm_rt.manifest import FORMAT_VERSION

    header = Path(__file__).resolve().parents[1] / "cpp" / "src" / "manifest.h"
    found = re.search(r"kManifestFormatVersion = (\d+);", header.read_text())
    assert found and int(found.group(1)) == FORMAT_VERSION
