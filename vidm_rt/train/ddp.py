"""DistributedDataParallel under torchrun (NCCL on GPUs, gloo on CPUs); one process needs none."""

from __future__ import annotations

import os
from typing import Any


def pick_device(name: str) -> str:
    """`auto`: CUDA when there is a GPU, else the CPU; any other name as given."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class Distributed:
    """Rank and world size from torchrun's environment; a no-op for a single process."""

    def __init__(self, device: str) -> None:
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        # Each process of a multi-GPU run trains on its own GPU.
        self.device = (f"cuda:{self.local_rank}" if device.startswith("cuda") and self.world > 1
                       else device)

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes (checkpoints, log, previews)."""
        return self.rank == 0

    def wrap(self, model: Any) -> Any:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
