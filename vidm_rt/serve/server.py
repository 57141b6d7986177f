"""`vidm-rt serve`: the generator behind Triton Inference Server (PyTriton), streaming frames.

Model `vidm` (decoupled: many responses per request), one request per video:

    inputs   seed         UINT64 [1]
             frames       INT32  [1]         1 .. --max-frames
             first_frame  FP32   [C, H, W]   optional: image-to-video, in [-1, 1]
             precision    BYTES  [1]         optional: one of the loaded precisions (default:
                                             the first)
    outputs  index        INT32  [1]         the frame's number, 0 first
             frame        FP32   [C, H, W]   in [-1, 1]

One response per frame, in order, as the frame is made; then Triton's empty final response
(`triton_final_response`). A bad request gets one error response naming the problem.

Model `vidm_stats` (input `precision` BYTES [1]; outputs `names` BYTES [N], `values` INT64 [N]):
the slot scheduler's counters (`slots.BatchStats`) for that precision, e.g. `joined_running`,
the requests that joined a batch already generating another video.

Triton's own endpoints give health (/v2/health/ready) and Prometheus metrics (/metrics on the
metrics port); every endpoint listens on --host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sysconfig
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import MODEL, STATS_MODEL
from .slots import SlotScheduler, VideoRequest


@dataclass
class ServeOptions:
    """How `vidm-rt serve` runs: the export, the backend and the endpoints."""

    engine: Path
    backend: str = "onnxruntime"
    device: str = "cpu"
    threads: int | None = None
    precisions: tuple[str, ...] = ("fp32",)
    host: str = "127.0.0.1"
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    max_frames: int = 64
    cuda_graphs: bool = True


def python_library_path() -> None:
    """Put this interpreter's libpython first on LD_LIBRARY_PATH. Triton's Python backend stub
    otherwise loads the system's libpython, which does not match the interpreter's standard
    library (an AttributeError from multiprocessing.resource_tracker when the model loads).
    PyTriton copies os.environ into the server it starts, so setting it here is enough."""
    libdir = sysconfig.get_config_var("LIBDIR")
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if libdir and (not paths or paths[0] != libdir):
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])


class VideoModel:
    """The inference callables bound to Triton: parse and check a request, hand it to the
    precision's slot scheduler, stream its frames back."""

    def __init__(self, schedulers: dict[str, SlotScheduler], max_frames: int) -> None:
        self.schedulers = schedulers
        self.max_frames = max_frames
        gen = next(iter(schedulers.values())).gen
        self.image_shape = gen.image_shape

    def parse(self, inputs: dict[str, np.ndarray]) -> tuple[str, int, int, np.ndarray | None]:
        """(precision, seed, frames, first frame) of a request, or ValueError naming the fix."""
        seed = _scalar(inputs, "seed")
        frames = _scalar(inputs, "frames")
        if not 1 <= frames <= self.max_frames:
            raise ValueError(f"frames must be in [1, {self.max_frames}] (the server's "
                             f"--max-frames), got {frames}")
        precision = next(iter(self.schedulers))
        if "precision" in inputs:
            value = np.asarray(inputs["precision"]).reshape(-1)
            if value.size != 1:
                raise ValueError("precision must hold one string")
            precision = _text(value[0])
            if precision not in self.schedulers:
                raise ValueError(f"precision {precision!r} is not loaded: this server has "
                                 f"{', '.join(self.schedulers)} (see --precision)")
        first = None
        if "first_frame" in inputs:
            first = np.asarray(inputs["first_frame"], np.float32)
            if first.shape != self.image_shape:
                raise ValueError(f"first_frame has shape {first.shape}; this model needs "
                                 f"{self.image_shape} (float32 in [-1, 1])")
            if not np.all(np.isfinite(first)):
                raise ValueError("first_frame holds NaN or infinite values")
        elif not self.schedulers[precision].gen.has_content:
            raise ValueError("this model has no content model: send a first_frame")
        return precision, seed, frames, first

    async def infer(self, requests: list[Any]) -> AsyncIterator[list[dict[str, np.ndarray]]]:
        """The `vidm` model: one response per frame as the scheduler delivers it."""
        if len(requests) != 1:
            raise ValueError("send one video per request")
        precision, seed, frames, first = self.parse(dict(requests[0].data))
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, np.ndarray | None, str | None]] = asyncio.Queue()

        def put(*event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        request = VideoRequest(seed, frames, on_frame=lambda i, f: put(i, f, None),
                               on_end=lambda error: put(-1, None, error), first_frame=first)
        scheduler = self.schedulers[precision]
        scheduler.submit(request)
        try:
            while True:
                index, frame, error = await events.get()
                if index < 0:
                    if error is not None:
                        raise RuntimeError(error)
                    return
                yield [{"index": np.array([index], np.int32), "frame": frame}]
        finally:
            # Frees the slot at the next frame boundary when the stream stops early.
            scheduler.cancel(request)

    def stats(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        """The `vidm_stats` model: the named counters of a precision's scheduler."""
        replies = []
        for request in requests:
            precision = _text(np.asarray(request["precision"]).reshape(-1)[0])
            if precision not in self.schedulers:
                raise ValueError(f"precision {precision!r} is not loaded")
            counters = self.schedulers[precision].stats.as_dict()
            counters["slots"] = self.schedulers[precision].slots
            replies.append({"names": np.array([k.encode() for k in counters], np.object_),
                            "values": np.array(list(counters.values()), np.int64)})
        return replies


def _scalar(inputs: dict[str, np.ndarray], name: str) -> int:
    if name not in inputs:
        raise ValueError(f"the request lacks input {name!r}")
    value = np.asarray(inputs[name]).reshape(-1)
    if value.size != 1 or value.dtype.kind not in "iu":
        raise ValueError(f"{name} must be one integer, got {value.dtype} of shape "
                         f"{np.asarray(inputs[name]).shape}")
    return int(value[0])


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def bind_models(triton: Any, model: VideoModel) -> None:
    """Bind `vidm_stats` and `vidm` to a pytriton.triton.Triton, in that order: the models load
    in turn, so `vidm` being ready (the readiness probe) means both are."""
    from pytriton.model_config import ModelConfig, Tensor

    shape = model.image_shape
    triton.bind(
        model_name=STATS_MODEL, infer_func=model.stats,
        inputs=[Tensor(name="precision", dtype=bytes, shape=(1,))],
        outputs=[Tensor(name="names", dtype=bytes, shape=(-1,)),
                 Tensor(name="values", dtype=np.int64, shape=(-1,))],
        config=ModelConfig(batching=False))
    triton.bind(
        model_name=MODEL, infer_func=model.infer,
        inputs=[Tensor(name="seed", dtype=np.uint64, shape=(1,)),
                Tensor(name="frames", dtype=np.int32, shape=(1,)),
                Tensor(name="first_frame", dtype=np.float32, shape=(-1, -1, -1), optional=True),
                Tensor(name="precision", dtype=bytes, shape=(1,), optional=True)],
        outputs=[Tensor(name="index", dtype=np.int32, shape=(1,)),
                 Tensor(name="frame", dtype=np.float32, shape=shape)],
        config=ModelConfig(batching=False, decoupled=True))


def serve(options: ServeOptions, say: Callable[[str], None]) -> None:
    """Load the generators (one per precision, loaded once), start Triton and serve until
    SIGTERM or SIGINT; then stop taking frames, end the open streams and stop Triton."""
    from pytriton.triton import Triton, TritonConfig

    from ..runtime import RuntimeOptions, VideoGenerator

    python_library_path()
    schedulers: dict[str, SlotScheduler] = {}
    # Closed in reverse: each scheduler (its worker stopped) before its generator.
    with contextlib.ExitStack() as stack:
        for precision in options.precisions:
            gen = stack.enter_context(VideoGenerator(
                options.engine, backend=options.backend, device=options.device,
                threads=options.threads,
                options=RuntimeOptions(precision=precision, cuda_graphs=options.cuda_graphs)))
            schedulers[precision] = SlotScheduler(gen, name=precision)
            stack.callback(schedulers[precision].close)
        model = VideoModel(schedulers, options.max_frames)
        config = TritonConfig(
            http_address=options.host, http_port=options.http_port,
            grpc_address=options.host, grpc_port=options.grpc_port,
            metrics_address=options.host, metrics_port=options.metrics_port,
            allow_gpu_metrics=options.device != "cpu", exit_timeout_secs=10)

        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
        signal.signal(signal.SIGINT, lambda _signum, _frame: stopping.set())
        triton = Triton(config=config)
        try:
            bind_models(triton, model)
            triton.run()
            say(f"serving {options.engine} ({options.backend}, "
                f"{', '.join(options.precisions)}, {next(iter(schedulers.values())).slots} "
                f"slots) on {options.host}: grpc {options.grpc_port}, http "
                f"{options.http_port}, metrics {options.metrics_port}")
            while not stopping.wait(1.0):
                if not triton.is_alive():
                    raise RuntimeError("Triton Inference Server stopped: see its log above")
        finally:
            # The open streams end first (with an error saying so), so that Triton has nothing
            # in flight to wait for when it stops.
            for scheduler in schedulers.values():
                scheduler.close()
            triton.stop()
