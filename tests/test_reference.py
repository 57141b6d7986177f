"""The PyTorch reference video sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidm_rt import noise
from vidm_rt.reference import denoise_frame, generate_video, sample_video
from vidm_rt.schedule import sampler_table


@pytest.mark.parametrize("sampler", ["ancestral", "ddim", "dpmpp2m"])
def test_seeded_video_is_deterministic_and_in_range(tiny_models, sampler: str) -> None:
    _, content, motion = tiny_models
    table = sampler_table(sampler, 4)
    a = generate_video(motion, table, 3, content=content, seed=7)
    b = generate_video(motion, table, 3, content=content, seed=7)
    c = generate_video(motion, table, 3, content=content, seed=8)
    assert a.shape == (1, 3, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.min() >= -1 and a.max() <= 1
    assert a.std() > 0.01  # not a constant image


def test_flow_once_per_frame_equals_the_reference_loop(tiny_models) -> None:
    _, content, motion = tiny_models
    table = sampler_table("ancestral", 3)
    fast = generate_video(motion, table, 3, content=content, seed=1)
    slow = generate_video(motion, table, 3, content=content, seed=1, recompute_flow=True)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)


def test_batch_members_equal_videos_generated_alone(tiny_models) -> None:
    # Noise is addressed by video index, so video 1 of a batch is video 1 generated alone.
    _, content, motion = tiny_models
    table = sampler_table("dpmpp2m", 3)
    batch = generate_video(motion, table, 2, content=content, seed=3, batch=2)
    alone = generate_video(motion, table, 2, content=content, seed=3, first_video=1)
    # Not bit-equal: CPU convolution kernels round differently for batch 1 and 2.
    torch.testing.assert_close(batch[1:], alone, rtol=0, atol=1e-3)
    assert not torch.allclose(batch[0], batch[1])


def test_given_first_frame_is_frame_zero(tiny_models) -> None:
    _, _, motion = tiny_models
    first = torch.rand(1, 3, 32, 32) * 2 - 1
    frames = list(sample_video(motion, sampler_table("ddim", 2), 3, first_frame=first, batch=2))
    assert len(frames) == 3
    assert torch.equal(frames[0], first.expand(2, -1, -1, -1))
    with pytest.raises(ValueError, match="give a first frame"):
        next(sample_video(motion, sampler_table("ddim", 2), 2))


def test_denoise_frame_starts_from_addressed_noise() -> None:
    # x_T, the first input the network sees, is noise step 0 of (seed, video, frame).
    table = sampler_table("ddim", 1)
    seen = []

    def model(x, t):
        seen.append(x.clone())
        return torch.zeros(x.shape[0], 6, *x.shape[2:])

    def noise_fn(step):
        return torch.from_numpy(noise.gaussian_batch(5, [0], 2, step, (3, 4, 4)))

    denoise_frame(model, table, noise_fn)
    np.testing.assert_array_equal(seen[0].numpy(), noise.gaussian_batch(5, [0], 2, 0, (3, 4, 4)))
