"""The training stage: VIDM's content and motion models, `python -m vidm_rt.train` or
`vidm-rt train`.

One process, or `torchrun --nproc_per_node N -m vidm_rt.train ...` for DistributedDataParallel
(ddp.py: NCCL on GPUs, gloo on CPUs); only rank 0 writes. A run (loop.py) is a sequence of
named steps:

    start     run.py          models from a preset or --init, the data, the optimizer
    resume    checkpoints.py  the latest save of the run folder (--resume)
    per step  batches.py      the step's batches and generators, seeded by (seed, step, rank)
              step.py         the loss of each trained role, one AdamW update, the EMA
              log.py          log.jsonl, the progress bar, preview GIFs
              checkpoints.py  every --save-every steps, the last --keep kept
    finish    checkpoints.py  model.safetensors, the final EMA weights

A resumed run reproduces an uninterrupted one exactly. torch is imported inside the functions,
so importing this package (for the CLI) stays light.
"""

from .cli import train_command
from .config import ROLES, TrainConfig, TrainResult
from .loop import train

__all__ = ["ROLES", "TrainConfig", "TrainResult", "train", "train_command"]
