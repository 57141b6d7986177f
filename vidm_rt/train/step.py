"""One optimizer step: the loss of every trained role on its batch, one AdamW update of all of
them together, then the EMA."""

from __future__ import annotations

from typing import Any

import numpy as np

from .batches import blurred_condition, draw_batch, noisy_condition, step_seed
from .run import Run


def optimizer_step(run: Run, step: int) -> tuple[float, dict[str, float]]:
    """Train step `step` (numbered from 0); returns its loss and the loss terms per role."""
    import torch
    from torch.nn.utils import clip_grad_norm_

    tc, device = run.tc, run.device
    seed = step_seed(tc.seed, step, run.dist.rank)
    torch.manual_seed(seed)  # dropout, if a preset enables it
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng([tc.seed, step, run.dist.rank])
    total = torch.zeros((), device=device)
    terms_log: dict[str, float] = {}
    for role in tc.roles:
        terms = _role_loss(run, role, draw_batch(role, run.ds, rng, tc.batch), gen)
        total = total + terms["loss"].mean()
        terms_log.update({f"{role}_{k}": float(v.detach().mean()) for k, v in terms.items()})
    run.opt.zero_grad(set_to_none=True)
    total.backward()
    clip_grad_norm_(run.params, tc.grad_clip)
    run.opt.step()
    update_ema(run.ema, run.models, tc.ema)
    return float(total.detach()), terms_log


def _role_loss(run: Run, role: str, b: dict[str, Any], gen: Any) -> dict[str, Any]:
    """The loss terms (vidm_rt.losses) of one role's denoiser on its batch `b`."""
    import torch

    device, cfg, loss_fn = run.device, run.cfg, run.loss_fn
    x0 = torch.from_numpy(b["frame"]).to(device)
    t = torch.randint(0, cfg.diffusion.num_timesteps, (run.tc.batch,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    t = t.to(device)
    x_t = loss_fn.q_sample(x0, t, noise)
    if role == "motion" and run.tc.cond_blur > 0:
        b["prev"] = blurred_condition(b["prev"], run.tc.cond_blur, gen)
    if role == "motion" and cfg.cond_noise > 0:
        b["prev"] = noisy_condition(b["prev"], cfg.cond_noise, gen)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.autocast):
        if role == "content":
            out = run.wrapped[role](x_t, t.float())
        else:
            out = run.wrapped[role](x_t, t.float(), torch.from_numpy(b["k"]).to(device),
                                    torch.from_numpy(b["prev"]).to(device),
                                    torch.from_numpy(b["first"]).to(device))
    return loss_fn(out, x0, x_t, t, noise)


def update_ema(ema: dict[str, Any], models: dict[str, Any], decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, per parameter."""
    import torch

    with torch.no_grad():
        for role, m in models.items():
            for e, p in zip(ema[role].parameters(), m.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)
