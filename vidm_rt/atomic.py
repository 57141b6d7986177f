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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# marker(folder) -> whether `folder` is one that a writer made and may replace whole.
Marker = Callable[[Path], bool]


def check_replaceable(path: str | Path, ours: Marker) -> None:
    """Refuse, naming `path`, to replace a folder that holds anything a vidm-rt writer of this
    kind did not put there: a mistyped --out must never delete a user's files."""
    path = Path(path)
    if path.is_dir() and any(path.iterdir()) and not ours(path):
        raise ValueError(f"{path}: is a folder that holds other files; vidm-rt replaces only a "
                         "folder it wrote: choose a new or empty folder")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file, not a folder")


@contextmanager
def atomic_write(path: str | Path, directory: bool = False,
                 ours: Marker | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    directory=False: the temporary path is a file name that does not exist yet (write it once).
    directory=True: it is an empty folder to fill. An existing folder at `path` is replaced
    only when it is empty or `ours(path)` says this writer made it (checked before any work
    and again before the swap); it is removed only after the new one is in place.
    """
    path = Path(path)
    if directory:
        check_replaceable(path, ours or (lambda _folder: False))
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = holder / path.name
    try:
        if directory:
            tmp.mkdir()
        yield tmp
        if directory and path.exists():
            check_replaceable(path, ours or (lambda _folder: False))
            path.rename(holder / f"{path.name}.old")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def holds(*names: str) -> Marker:
    """A marker: the folder holds one of these files (a manifest.json, a quality.json...)."""
    return lambda folder: any((folder / name).is_file() for name in names)


def check_writable(path: str | Path) -> None:
    """Fail now, naming `path`, if it could not be written later: its folder (or the nearest
    folder above it that exists, where the rest would be created) must take a new file."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{path}: cannot write there: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as e:
        raise ValueError(f"{path}: cannot write there: {folder} does not take new files "
                         f"({e.strerror or e}); choose another path") from None
    os.close(fd)
    os.unlink(probe)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return write_bytes(path, text.encode())
