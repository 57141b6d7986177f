"""What one training run holds from start to end: its options, model config, data, models,
their EMA copies and the optimizer, on one device of one process."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ROLES, TrainConfig
from .ddp import Distributed, pick_device


@dataclass
class Run:
    tc: TrainConfig
    cfg: Any                       # vidm_rt.config.VIDMConfig
    ds: Any                        # the data set (vidm_rt.data)
    dist: Distributed
    models: dict[str, Any]         # role -> model being trained
    ema: dict[str, Any]            # role -> its EMA copy (what checkpoints hold)
    carried: dict[str, Any]        # roles not trained here but kept in saved checkpoints
    opt: Any
    wrapped: dict[str, Any] = field(default_factory=dict)  # role -> model as DDP runs it
    loss_fn: Any = None
    autocast: bool = False

    @property
    def out(self) -> Path:
        return Path(self.tc.out)

    @property
    def device(self) -> str:
        return self.dist.device

    @property
    def params(self) -> list[Any]:
        return [p for m in self.models.values() for p in m.parameters()]


def start_run(tc: TrainConfig) -> Run:
    """The models (from a preset or --init), the data and the optimizer, on the CPU."""
    import torch

    from ..checkpoint import load_checkpoint
    from ..config import preset
    from ..data import DataError, open_dataset
    from ..models import ContentModel, MotionModel
    from ..models.motion import with_prev_input

    dist = Distributed(pick_device(tc.device))
    cfg = preset(tc.preset)
    init = load_checkpoint(tc.init) if tc.init else None
    if init is not None:
        cfg = init.config
    if tc.cond_noise is not None:
        cfg = dataclasses.replace(cfg, cond_noise=tc.cond_noise)
    if tc.prev_input and not cfg.prev_input:
        cfg = dataclasses.replace(cfg, prev_input=True)
        if init is not None and init.motion is not None:
            init = dataclasses.replace(init, motion=with_prev_input(init.motion, cfg))
    ds = open_dataset(tc.data, cfg.train_frames, cfg.image_size, seed=tc.seed)
    if len(ds) == 0:
        raise DataError(f"{tc.data}: the dataset is empty")

    torch.manual_seed(tc.seed)
    builders = {"content": ContentModel, "motion": MotionModel}
    models: dict[str, Any] = {}
    carried: dict[str, Any] = {}
    for role in ROLES:
        start_from = getattr(init, role) if init is not None else None
        if role in tc.roles:
            models[role] = start_from if start_from is not None else builders[role](cfg)
        elif start_from is not None:
            carried[role] = start_from
    ema = {role: copy.deepcopy(m).requires_grad_(False) for role, m in models.items()}
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    return Run(tc, cfg, ds, dist, models, ema, carried, opt)


def place(run: Run) -> None:
    """Move models, EMA and optimizer state to the run's device; wrap for DDP; the loss."""
    import torch

    from ..losses import DiffusionLoss

    device = run.device
    for m in (*run.models.values(), *run.ema.values()):
        m.to(device)
    for m in run.ema.values():
        m.eval()
    for group in run.opt.state.values():  # optimizer state follows its parameters' device
        for k, v in group.items():
            if torch.is_tensor(v) and k != "step":
                group[k] = v.to(device)
    run.wrapped = {role: run.dist.wrap(m) for role, m in run.models.items()}
    run.loss_fn = DiffusionLoss(run.cfg.diffusion, device)
    run.autocast = (device.startswith("cuda") and run.tc.amp
                    and torch.cuda.is_bf16_supported())
