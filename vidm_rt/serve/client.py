"""A client of `vidm-rt serve` over Triton's gRPC streaming API (tritonclient): one video per
call, frames handed over as they arrive."""

from __future__ import annotations

import queue
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import MODEL, STATS_MODEL


def grpc_address(url: str) -> str:
    """grpc://HOST:PORT (or HOST:PORT) -> HOST:PORT."""
    match = re.fullmatch(r"(?:grpc://)?([^/:\s]+|\[[0-9a-fA-F:]+\]):(\d+)/?", url)
    if match is None:
        raise ValueError(f"--url {url!r}: give grpc://HOST:PORT (the server's --grpc-port)")
    return f"{match.group(1)}:{match.group(2)}"


def server_message(error: Any) -> str:
    """The last line of a server-side error (PyTriton sends the whole traceback), without the
    exception's class name."""
    text = error.message() if hasattr(error, "message") else str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    return re.sub(r"^[A-Za-z_.]*(Error|Exception): ", "", last)


def _client(url: str, model: str = MODEL) -> Any:
    """A gRPC client of a server whose `model` is ready, or ValueError saying what is wrong."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_address(url))
    try:
        ready = client.is_model_ready(model)
    except Exception as e:  # InferenceServerException: refused, timed out, not gRPC
        client.close()
        raise ValueError(f"no vidm-rt server at {url}: {server_message(e)}") from None
    if not ready:
        client.close()
        raise ValueError(f"{url}: model {model!r} is not ready (still loading, or not a "
                         "vidm-rt server)")
    return client


def image_shape(url: str) -> tuple[int, ...]:
    """The (C, H, W) of the served model's frames, from Triton's model metadata."""
    client = _client(url)
    try:
        meta = client.get_model_metadata(MODEL, as_json=True)
    finally:
        client.close()
    frame = next(o for o in meta["outputs"] if o["name"] == "frame")
    return tuple(int(d) for d in frame["shape"])


def _final(result: Any) -> bool:
    params = result.get_response().parameters
    return "triton_final_response" in params and params["triton_final_response"].bool_param


def request_video(url: str, seed: int, frames: int, first_frame: np.ndarray | None = None,
                  precision: str | None = None,
                  on_frame: Callable[[int, np.ndarray], None] | None = None,
                  timeout: float = 600.0) -> np.ndarray:
    """Stream one video from the server: (frames, C, H, W) float32 in [-1, 1]. `on_frame(index,
    frame)` sees each frame as it arrives. ValueError carries the server's message for a bad
    request; frames lost, repeated or out of order are an error too."""
    import tritonclient.grpc as grpcclient

    inputs = [grpcclient.InferInput("seed", [1], "UINT64"),
              grpcclient.InferInput("frames", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([seed], np.uint64))
    inputs[1].set_data_from_numpy(np.array([frames], np.int32))
    if first_frame is not None:
        first = np.ascontiguousarray(first_frame, np.float32)
        inputs.append(grpcclient.InferInput("first_frame", list(first.shape), "FP32"))
        inputs[-1].set_data_from_numpy(first)
    if precision is not None:
        inputs.append(grpcclient.InferInput("precision", [1], "BYTES"))
        inputs[-1].set_data_from_numpy(np.array([precision.encode()], np.object_))
    events: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = _client(url)
    received: list[np.ndarray] = []
    try:
        client.start_stream(callback=lambda result, error: events.put((result, error)))
        client.async_stream_infer(MODEL, inputs, enable_empty_final_response=True)
        while True:
            try:
                result, error = events.get(timeout=timeout)
            except queue.Empty:
                raise ValueError(f"no frame from {url} in {timeout:.0f} s") from None
            if error is not None:
                raise ValueError(f"server: {server_message(error)}")
            if _final(result) and result.as_numpy("frame") is None:
                break
            index = int(result.as_numpy("index")[0])
            if index != len(received):
                raise ValueError(f"frame {index} arrived where frame {len(received)} was due")
            frame = result.as_numpy("frame")
            received.append(frame)
            if on_frame is not None:
                on_frame(index, frame)
            if _final(result):
                break
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()
    if len(received) != frames:
        raise ValueError(f"the stream ended after {len(received)} of {frames} frames")
    return np.stack(received)


def server_stats(url: str, precision: str = "fp32") -> dict[str, int]:
    """The slot scheduler's counters of one precision (slots.BatchStats, plus `slots`)."""
    import tritonclient.grpc as grpcclient

    request = grpcclient.InferInput("precision", [1], "BYTES")
    request.set_data_from_numpy(np.array([precision.encode()], np.object_))
    client = _client(url, STATS_MODEL)
    try:
        result = client.infer(STATS_MODEL, [request])
    except Exception as e:  # InferenceServerException
        raise ValueError(f"server: {server_message(e)}") from None
    finally:
        client.close()
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in result.as_numpy("names")]
    return dict(zip(names, (int(v) for v in result.as_numpy("values")), strict=True))
