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


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, tiny_models):
    """A tiny export (ancestral, 3 steps, 4 frames) with fp16 graphs that are copies of the fp32
    ones, for the GPU path's tests over fake TensorRT and CUDA (vidm_rt.testing.exports)."""
    from vidm_rt.testing.exports import export_with_fp16_copies

    return export_with_fp16_copies(tmp_path_factory.mktemp("gpu-export"), tiny_models,
                                   sampler="ancestral", steps=3, frames=4)
