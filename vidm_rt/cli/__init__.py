"""`vidm-rt`: the command-line entry point, one module per command group.

Commands import their heavy dependencies (torch) inside the command, so `vidm-rt --help` and the
runtime commands work on a runtime-only install.
"""

from __future__ import annotations

import click

from .. import __version__
from ..train import train_command
from ..train.distill_cli import distill_command
from .eval import eval_command
from .export import build, calibrate, export
from .model import import_official, info, sample
from .quality import quality
from .run import bench, generate
from .serve import request, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidm-rt")
def main() -> None:
    """vidm-rt: deploy VIDM video diffusion (content + motion generators).

    \b
    Typical flow:
      vidm-rt generate --out demo.gif                  the bundled demo model
      vidm-rt train --preset tiny --out runs/tiny      train on moving shapes
      vidm-rt distill runs/tiny/model.safetensors --steps 4 --out runs/tiny4
                                                       a student for 4 DDIM steps
      vidm-rt export runs/tiny/model.safetensors       ONNX graphs + manifest in export/
      vidm-rt generate --engine export/NAME --out video.mp4
      vidm-rt calibrate export/NAME                    INT8 graphs (--precision int8)
      vidm-rt quality export/NAME                      fp16/int8 vs fp32: parity per frame
      vidm-rt eval --engine export/NAME                FVD of generated sets vs real videos
      vidm-rt bench --engine export/NAME               time backends vs the reference loop
      vidm-rt import-official CKPT --out model.safetensors
      vidm-rt serve --batch 4                          Triton server, streamed frames
      vidm-rt request --frames 16 --out video.mp4      a video from that server
    """


for command in (generate, export, calibrate, build, bench, quality, eval_command, sample,
                train_command, distill_command, import_official, info, serve, request):
    main.add_command(command)

