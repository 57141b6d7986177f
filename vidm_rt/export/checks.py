"""How the export checks a graph: run it on ONNX Runtime's CPU EP and compare with PyTorch, one
copy of a large model's weights in memory at a time."""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path
from typing import Any

import numpy as np


def run_graph(graph: Path | bytes, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of the graph file or serialized graph `graph` on ONNX Runtime's CPU EP; the
    session is gone when this returns. No arena and no prepacked weight copies: validation
    checks the graph, and a second copy of a large model's weights would double the peak."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = False
    opts.add_session_config_entry("session.disable_prepacking", "1")
    source = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def max_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Max |got - want| / (1 + max |want|) over the outputs (see options.TOLERANCE)."""
    err = 0.0
    for g, w in zip(got, want, strict=True):
        err = max(err, float(np.max(np.abs(g - w)) / (1.0 + np.max(np.abs(w)))))
    return err


def release_memory() -> None:
    """Collect what a finished step left (the exporter's programs hold reference cycles) and
    hand freed heap pages back to the system (glibc keeps them otherwise), so that the next
    step's peak does not stack on them."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def save_model(model: Any, path: Path) -> None:
    """Write an ONNX model with one serialized copy in memory (onnx.save holds about three of
    a large model at once)."""
    path.write_bytes(model.SerializeToString())
