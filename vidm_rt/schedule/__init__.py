"""Schedules, numpy only: the diffusion process (`diffusion`), the samplers as one update with
per-step coefficient tables (`samplers`), and the frame index policy (`frames`)."""

from .diffusion import (
    NUM_TRAIN_TIMESTEPS,
    Schedule,
    learned_range_log_variance,
    linear_betas,
    make_schedule,
    space_timesteps,
)
from .frames import FRAME_INDEX_POLICIES, frame_index
from .samplers import COEFFICIENT_NAMES, SAMPLERS, SamplerTable, apply_update, sampler_table

__all__ = [
    "COEFFICIENT_NAMES", "FRAME_INDEX_POLICIES", "NUM_TRAIN_TIMESTEPS", "SAMPLERS", "Schedule",
    "SamplerTable", "apply_update", "frame_index", "learned_range_log_variance", "linear_betas",
    "make_schedule", "sampler_table", "space_timesteps",
]
