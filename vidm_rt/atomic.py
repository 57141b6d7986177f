"""Writing files and folders so that nobody ever sees a half-written one.

Every writer in vidm-rt (videos, checkpoints, manifests, exports, engines, calibration data,
reports) fills a temporary path beside its target and renames it into place when done; on any
error, an interrupt included, the temporary path is removed and the target is left as it was.
The temporary name keeps the target's extension, since some writers (imageio, safetensors)
choose the format from it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    directory=False: the temporary path is a file name that does not exist yet (write it once).
    directory=True: it is an empty folder to fill; an existing folder at `path` is swapped out
    whole and removed only after the new one is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = holder / path.name
    try:
        if directory:
            tmp.mkdir()
        yield tmp
        if directory and path.exists():
            old = holder / f"{path.name}.old"
            path.rename(old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return write_bytes(path, text.encode())
