"""The progress bar every long command shows: done/total, rate and time left, on stderr.

Off with --quiet and when stderr is not a terminal (logs and CI get the commands' result lines,
not bar redraws).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

# advance(n=1, label=None): n more units done; a label replaces the bar's (the current stage).
Advance = Callable[..., None]


def quiet_option(fn: Callable[..., object]) -> Callable[..., object]:
    """--quiet / -q: no progress bar."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)


@contextmanager
def progress(length: int, label: str, unit: str = "step", quiet: bool = False) -> Iterator[Advance]:
    """Yield advance(n=1), which moves a bar of `length` units labelled `label`."""
    if quiet or not sys.stderr.isatty():
        yield lambda n=1, label=None: None
        return
    start = time.monotonic()
    done = 0

    def rate(_item: object) -> str:
        elapsed = time.monotonic() - start
        return f"{done / elapsed:.2f} {unit}/s" if done and elapsed > 0 else ""

    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True,
                           item_show_func=rate) as bar:

        def advance(n: int = 1, label: str | None = None) -> None:
            nonlocal done
            done += n
            if label is not None:
                bar.label = label
            bar.update(n)
            if n == 0:  # update(0) does not redraw; a new label should show at once
                bar.render_progress()

        yield advance
