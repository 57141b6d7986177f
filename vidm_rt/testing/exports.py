"""Helpers the test modules share: a tiny export, and running code where torch cannot import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent

# Prepended to a script: any import of torch fails.
BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
"""


def export_tiny(root: Path, tiny_models: Any, **options: Any) -> tuple[Path, dict[str, float]]:
    """Save the tiny models (the `tiny_models` fixture) as a checkpoint in `root` and export them
    there as `tiny` with ExportOptions(**options); returns export_checkpoint's result."""
    from ..checkpoint import save_checkpoint
    from ..export import ExportOptions, export_checkpoint

    cfg, content, motion = tiny_models
    ckpt = save_checkpoint(root / "tiny.safetensors", cfg, content, motion)
    return export_checkpoint(ckpt, ExportOptions(name="tiny", out_dir=root, **options))


def assert_runs_without_torch(body: str) -> None:
    """Run `body` in a fresh interpreter (repository root importable) where importing torch fails,
    and check that it succeeds without torch in sys.modules."""
    code = (BLOCK_TORCH + textwrap.dedent(body)
            + '\nassert "torch" not in sys.modules\nprint("ok")\n')
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def export_with_fp16_copies(root: Path, tiny_models: Any, **options: Any) -> Path:
    """A tiny export whose "precisions" section lists fp16 files that are copies of the fp32
    graphs (a fake TensorRT builder only reads them; int8 absent), marked as exported with
    --fp16-weights, which an engine manifest must carry."""
    import shutil

    from ..manifest import load_manifest, write_manifest

    path, _ = export_tiny(root, tiny_models, **options)
    manifest = load_manifest(path).to_dict()
    fp32 = {g: {"file": s["file"]} for g, s in manifest["graphs"].items()}
    fp16 = {}
    for graph, spec in fp32.items():
        if manifest["precisions"]["fp16"][graph] == spec:  # FP32 in every precision (update, flow)
            fp16[graph] = spec
            continue
        name = spec["file"].replace(".onnx", ".fp16.onnx")
        shutil.copy(path / spec["file"], path / name)
        fp16[graph] = {"file": name}
    manifest["precisions"] = {"fp32": fp32, "fp16": fp16}
    manifest["fp16_weights"] = True
    manifest["files"] = sorted(set(manifest["files"]) | {s["file"] for s in fp16.values()})
    write_manifest(path, manifest)
    return path


def build_tiny(export_dir: Path, tmp_path: Path, **options: Any) -> Path:
    """`vidm-rt build` of `export_dir` into tmp_path/engines/tiny with BuildOptions(**options)."""
    from ..build import BuildOptions, build_engines

    return build_engines(export_dir, BuildOptions(out=tmp_path / "engines" / "tiny", **options))


def video(gen: Any, frames: int = 4, seed: int = 5) -> Any:
    """A generator's whole video as one array (B, F, C, H, W)."""
    import numpy as np

    return np.stack(list(gen.generate(frames, seed=seed)), axis=1)


def served_video(gen: Any, seed: int, frames: int, timeout: float = 300) -> Any:
    """One request of `frames` frames at `seed` through a SlotScheduler on `gen` (its worker
    thread runs the generator); returns the frames (F, C, H, W), or raises with the request's
    error."""
    import threading

    import numpy as np

    from ..serve.slots import SlotScheduler, VideoRequest

    got: list[Any] = []
    ended: list[str | None] = []
    done = threading.Event()
    scheduler = SlotScheduler(gen)
    try:
        scheduler.submit(VideoRequest(seed=seed, frames=frames,
                                      on_frame=lambda _i, frame: got.append(frame),
                                      on_end=lambda error: (ended.append(error), done.set())))
        if not done.wait(timeout):
            raise TimeoutError(f"the request did not end within {timeout} s")
    finally:
        scheduler.close()
    if ended != [None]:
        raise RuntimeError(f"the request ended with {ended}")
    return np.stack(got)
