"""What several commands share: option types, the bundled demo model and its cached export,
the GPU runtime options."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

SAMPLER_CHOICE = click.Choice(["ancestral", "ddim", "dpmpp2m"])
PRECISION_CHOICE = click.Choice(["fp32", "fp16", "int8"])
# Trained by the project on moving shapes; vidm_rt/assets/README.md has the exact command.
BUNDLED_MODEL = Path(__file__).parent.parent / "assets" / "demo-tiny.safetensors"
ENGINE_HELP = ("Export or engine folder. Default: the bundled demo model, exported on first use "
               "into the cache folder $VIDM_RT_CACHE (default ~/.cache/vidm-rt; delete it to "
               "export again).")


def precision_list(value: str) -> list[str]:
    """Parse a comma-separated --precision list, or fail naming the valid ones."""
    wanted = [p.strip() for p in value.split(",") if p.strip()]
    if not wanted or any(p not in PRECISION_CHOICE.choices for p in wanted):
        raise ValueError(f"--precision {value!r}: give a comma-separated list of "
                         f"{', '.join(PRECISION_CHOICE.choices)}")
    return wanted


def first_frame_option(note: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--first-frame (also spelled --first-frames): the images image-to-video starts from."""
    return click.option(
        "--first-frame", "--first-frames", "first_frame", type=click.Path(path_type=Path),
        help="Image-to-video: start the videos from images instead of the content model "
             "(required for a model without one, like the released checkpoint). One image "
             "(PNG/JPEG, or .npy (3, H, W) in [-1, 1]), a folder of them, or a .npy stack "
             f"(N, 3, H, W); video v starts from image v mod N.{note}")


def cache_dir() -> Path:
    base = os.environ.get("VIDM_RT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "vidm-rt")
    return Path(base)


def default_engine(batch: int, say: Callable[[str], None]) -> Path:
    """The bundled demo model, exported once per batch size and export revision into the cache
    folder."""
    from ..export import EXPORT_REVISION
    from ..manifest import ManifestError, load_manifest, sha256_file

    if not BUNDLED_MODEL.is_file():
        raise ValueError("no bundled model in this installation: pass --engine DIR "
                         "(create one with `vidm-rt export CKPT`)")
    name = f"demo-tiny-b{batch}-{sha256_file(BUNDLED_MODEL)[:12]}-r{EXPORT_REVISION}"
    engine = cache_dir() / name
    try:
        load_manifest(engine)
        return engine
    except ManifestError:
        pass
    from ..export import ExportOptions, export_checkpoint

    say(f"exporting the bundled model once into {engine} ...")
    export_checkpoint(BUNDLED_MODEL, ExportOptions(name=name, out_dir=engine.parent, batch=batch,
                                                   frames=16), progress=say)
    return engine


def scale_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--scale N: write image outputs N times larger (nearest neighbour)."""
    return click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 64),
                        help="Write .gif/.mp4/PNG frames N times larger, each pixel an NxN "
                             "block (the 32x32 demo is easier to see at 4); .npy keeps the "
                             "frames as generated.")(fn)


def runtime_options(precision: str | None, no_cuda_graphs: bool, zero_copy: bool) -> Any:
    from ..runtime import RuntimeOptions

    return RuntimeOptions(precision=precision, cuda_graphs=not no_cuda_graphs,
                          zero_copy=zero_copy)


def gpu_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the GPU backends, shared by generate and bench."""
    fn = click.option("--zero-copy", is_flag=True,
                      help="tensorrt: host-visible buffers in mapped host memory (Jetson).")(fn)
    return click.option("--no-cuda-graphs", is_flag=True,
                        help="Launch every graph eagerly instead of replaying a captured "
                             "frame.")(fn)


