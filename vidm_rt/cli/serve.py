"""`vidm-rt serve` and `request`: the generator behind Triton Inference Server, and its client
(docs/serving.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import user_errors
from ..progress import progress, quiet_option
from .common import default_engine, precision_list, scale_option


@click.command()
@click.option("--engine", type=click.Path(path_type=Path),
              help="Export or engine directory (default: the bundled demo model, exported "
                   "with --batch slots).")
@click.option("--backend", default="onnxruntime", show_default=True,
              type=click.Choice(["onnxruntime", "torch", "tensorrt"]))
@click.option("--device", default="cpu", show_default=True,
              help="cpu or cuda[:N] (tensorrt: default cuda).")
@click.option("--precision", "precisions", default="fp32", show_default=True,
              help="Comma-separated precisions to load (each once); a request picks one, the "
                   "first by default.")
@click.option("--batch", type=click.IntRange(1),
              help="Slots: videos generated together. The export's batch; with --engine it "
                   "must match (default: the engine's, 1 for the bundled model).")
@click.option("--max-frames", default=64, show_default=True, type=click.IntRange(1),
              help="The longest video a request may ask for.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address of every endpoint (gRPC, HTTP, metrics); 0.0.0.0 for all.")
@click.option("--grpc-port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--http-port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--metrics-port", default=8002, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", type=click.IntRange(1), help="CPU threads (default: all).")
@click.option("--no-cuda-graphs", is_flag=True,
              help="Launch every graph eagerly instead of replaying a captured frame.")
@user_errors
def serve(engine: Path | None, backend: str, device: str, precisions: str, batch: int | None,
          max_frames: int, host: str, grpc_port: int, http_port: int, metrics_port: int,
          threads: int | None, no_cuda_graphs: bool) -> None:
    """Serve the generator on Triton Inference Server: streamed frames, continuous batching."""
    from ..manifest import load_manifest
    from ..serve.server import ServeOptions
    from ..serve.server import serve as run_server

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    if engine is None:
        engine = default_engine(batch or 1, say)
    slots = load_manifest(engine).batch
    if batch is not None and batch != slots:
        raise ValueError(f"{engine} was exported for batch {slots}: export again with "
                         f"--batch {batch}, or leave --batch out")
    if len({grpc_port, http_port, metrics_port}) != 3:
        raise ValueError("--grpc-port, --http-port and --metrics-port must differ")
    if backend == "tensorrt" and device == "cpu":
        device = "cuda"
    run_server(ServeOptions(engine=engine, backend=backend, device=device, threads=threads,
                            precisions=tuple(precision_list(precisions)), host=host,
                            grpc_port=grpc_port, http_port=http_port,
                            metrics_port=metrics_port, max_frames=max_frames,
                            cuda_graphs=not no_cuda_graphs), say)


@click.command()
@click.option("--url", default="grpc://127.0.0.1:8001", show_default=True,
              help="The server's gRPC endpoint.")
@click.option("--frames", default=16, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1))
@click.option("--first-frame", type=click.Path(path_type=Path),
              help="Image-to-video: an image (PNG/JPEG, or .npy (3, H, W) in [-1, 1]) of the "
                   "served model's size.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]),
              help="One of the server's precisions (default: its first).")
@click.option("--out", default="video.gif", show_default=True, type=click.Path(path_type=Path),
              help="video.mp4, video.gif, video.npy or a folder/ of PNG frames.")
@click.option("--fps", default=8.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds to wait for each frame.")
@scale_option
@quiet_option
@user_errors
def request(url: str, frames: int, seed: int, first_frame: Path | None, precision: str | None,
            out: Path, fps: float, timeout: float, scale: int, quiet: bool) -> None:
    """Stream one video from `vidm-rt serve` and write it."""
    from ..serve.client import image_shape, request_video
    from ..video import check_output, read_image, write_video

    check_output(out)
    first = None
    if first_frame is not None:
        shape = image_shape(url)
        first = read_image(first_frame, shape[-1])
    with progress(frames, f"{frames} frames from {url}", unit="frame", quiet=quiet) as advance:
        video = request_video(url, seed, frames, first_frame=first, precision=precision,
                              on_frame=lambda _i, _f: advance(), timeout=timeout)
    for path in write_video(out, video, fps=fps, scale=scale):
        click.echo(f"wrote {path}")
