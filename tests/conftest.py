"""Shared fixtures: small models with every parameter non-zero (zero-initialised output convs
would make the networks constant and hide errors)."""

from __future__ import annotations

import pytest

from vidm_rt.testing.weights import perturbed


@pytest.fixture(scope="session")
def tiny_models():
    """(config, content, motion) of the tiny preset with perturbed random weights."""
    torch = pytest.importorskip("torch")
    from vidm_rt.config import preset
    from vidm_rt.models import ContentModel, MotionModel

    torch.manual_seed(0)
    cfg = preset("tiny")
    return cfg, perturbed(ContentModel(cfg), 1), perturbed(MotionModel(cfg), 2)
