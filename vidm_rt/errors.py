"""How user-facing errors reach the terminal: one line, exit status 2, no traceback.

The package raises ValueError / OSError (and their subclasses ManifestError, CheckpointError,
...) with a message that names the problem and the fix; every command wraps its body in
`user_errors`. A missing optional dependency becomes the install line for the extra that has it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

# Top-level module -> the vidm-rt extra that installs it.
EXTRAS = {"torch": "torch", "safetensors": "torch", "onnx": "torch", "onnxscript": "torch",
          "tqdm": "torch", "scipy": "eval", "tensorrt": "gpu", "cuda": "gpu",
          "imageio": "video", "imageio_ffmpeg": "video", "PIL": "video",
          "pytriton": "serve", "tritonclient": "serve"}


def missing_dependency_message(e: ImportError) -> str:
    """The line that tells a user which extra installs the module an ImportError names."""
    missing = e.name or str(e)
    extra = EXTRAS.get(missing.split(".")[0], "cpu")
    return (f"this command needs {missing}: pip install 'vidm-rt[{extra}]' "
            "(for torch, install torch==2.13.0 first on CPU-only machines)")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the package's user-facing errors into one line and exit status 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ImportError as e:
            click.echo(f"error: {missing_dependency_message(e)}", err=True)
        except (ValueError, OSError) as e:
            click.echo(f"error: {e}", err=True)
        sys.exit(2)

    return wrapper
