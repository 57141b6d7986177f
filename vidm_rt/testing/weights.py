"""Random weights for speed and correctness checks (needs torch)."""

from __future__ import annotations

from typing import Any


def perturbed(model: Any, seed: int = 0, scale: float = 0.02) -> Any:
    """`model` with every parameter perturbed by scale x N(0, 1), in eval mode: zero-initialised
    output convs would make the networks constant, which hides errors and skips work."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model.eval()
