"""Shared fixtures: small models with every parameter non-zero (zero-initialised output convs
would make the networks constant and hide errors)."""

from __future__ import annotations

import pytest


def perturbed(model, seed: int = 0, scale: float = 0.02):
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="session")
def tiny_models():
    """(config, content, motion) of the tiny preset with perturbed random weights."""
    torch = pytest.importorskip("torch")
    from vidm_rt.config import preset
    from vidm_rt.models import ContentModel, MotionModel

    torch.manual_seed(0)
    cfg = preset("tiny")
    return cfg, perturbed(ContentModel(cfg), 1), perturbed(MotionModel(cfg), 2)
