"""The schedule's edges: every user-facing error with its message, the smallest processes and
spacings, read-only tables, the frame index policy. These kill the mutants of vidm_rt/schedule
that the formula tests let through (scripts/mutation.sh schedule; docs/testing.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidm_rt.schedule import (
    SamplerTable,
    apply_update,
    frame_index,
    learned_range_log_variance,
    linear_betas,
    make_schedule,
    sampler_table,
    space_timesteps,
)

ERRORS = [
    (lambda: linear_betas(0), ValueError, "num_timesteps must be a positive integer, got 0"),
    (lambda: linear_betas(2.5), ValueError, "num_timesteps must be a positive integer, got 2.5"),
    (lambda: space_timesteps(2.5, "1"), ValueError, "num_timesteps must be a positive integer"),
    (lambda: space_timesteps(1000, True), ValueError, "bad spacing True"),
    (lambda: space_timesteps(1000, "a,b"), ValueError,
     r"bad spacing 'a,b': expected 'N', 'N1,N2,...' or 'ddimN'"),
    (lambda: space_timesteps(1000, [1, "x"]), ValueError, r"bad spacing \[1, 'x'\]"),
    (lambda: space_timesteps(1000, "linspaceX"), ValueError, "expected 'linspaceN'"),
    (lambda: space_timesteps(1000, "linspace1000"), ValueError, r"N must be in \[1, 999\]"),
    (lambda: space_timesteps(1000, "ddimX"), ValueError, "expected 'ddimN'"),
    (lambda: space_timesteps(1000, "ddim400"), ValueError,
     r"cannot create exactly 400 steps from 1000 with an integer stride \(spacing 'ddim400'\)"),
    (lambda: space_timesteps(1000, "-1,5"), ValueError, "section counts must be >= 0"),
    (lambda: space_timesteps(1000, "0"), ValueError, "selects no timesteps"),
    (lambda: space_timesteps(10, "6,1"), ValueError, "cannot divide a section of 5 steps into 6"),
    # T = 10 scales the linear betas up to 2: the respaced process would not be a diffusion.
    (lambda: make_schedule("10", 10), ValueError, r"respaced betas must lie in \(0, 1\]"),
    (lambda: sampler_table("euler", 4), ValueError,
     "unknown sampler 'euler'; valid: ancestral, ddim, dpmpp2m"),
    (lambda: sampler_table("ddim", 2.5), ValueError, "steps must be an integer, got 2.5"),
    (lambda: sampler_table("ddim", 4, num_timesteps=0), ValueError,
     "num_timesteps must be a positive integer, got 0"),
    (lambda: sampler_table("ddim", 4, num_timesteps=2.5), ValueError,
     "num_timesteps must be a positive integer, got 2.5"),
    (lambda: sampler_table("ddim", 10, eta=5), ValueError,
     r"eta=5.0 is too large: 1 - acp_prev - sigma\^2 < 0"),
    # Just above 1: 1 - acp_prev - sigma^2 is only slightly negative (-2e-6 at the worst step).
    (lambda: sampler_table("ddim", 10, eta=1.01), ValueError, "eta=1.01 is too large"),
    (lambda: SamplerTable.from_dict({**sampler_table("ddim", 2).to_dict(), "sampler": "x"}),
     ValueError, "unknown sampler 'x'; valid: ancestral, ddim, dpmpp2m"),
    (lambda: SamplerTable.from_dict({**sampler_table("ddim", 2).to_dict(),
                                     "coef_x": [0.5, math.nan]}),
     ValueError, "coef_x has non-finite entries"),
    (lambda: apply_update(sampler_table("ddim", 4), 4, 0.0, 0.0, 0.0, 0.0, None), IndexError,
     "step 4 out of range for a 4-step table"),
]


@pytest.mark.parametrize("call, kind, message", ERRORS, ids=[m[:32] for _, _, m in ERRORS])
def test_each_error_names_the_problem(call, kind, message) -> None:
    with pytest.raises(kind, match=message):
        call()


def test_the_smallest_process_and_the_extreme_spacings() -> None:
    assert linear_betas(1).tolist() == [0.1]
    assert space_timesteps(1, "1").tolist() == [0]
    one = sampler_table("ancestral", 1, num_timesteps=1)
    assert one.model_t.tolist() == [0.0] and one.coef_x0.tolist() == [1.0]
    assert space_timesteps(1000, "ddim1000").tolist() == list(range(1000))  # stride 1
    assert space_timesteps(1000, "linspace999").tolist() == list(range(1, 1000))
    assert space_timesteps(1000, "2").tolist() == [0, 999]
    # An empty section keeps nothing of its half of the process.
    assert space_timesteps(1000, "0,10").tolist() == [500, 555, 611, 666, 722, 777, 833, 888,
                                                      944, 999]
    # A shorter process is used as given, not the default 1000 steps.
    assert sampler_table("ddim", 10, spacing="10", num_timesteps=500).model_t.max() < 500


def test_a_two_step_schedule_clips_the_first_posterior_log_variance() -> None:
    sched = make_schedule("2")
    assert sched.posterior_variance[0] == 0
    assert sched.posterior_log_variance_clipped[0] == pytest.approx(
        math.log(sched.posterior_variance[1]), rel=1e-12)


def test_learned_range_keeps_the_callers_type_and_takes_index_arrays() -> None:
    sched = make_schedule("10")
    v32 = np.array([-1.0, 0.5], np.float32)
    assert learned_range_log_variance(sched, 3, v32).dtype == np.float32
    both = learned_range_log_variance(sched, np.array([3, 5]), np.array([-1.0, 1.0]))
    assert both.tolist() == [sched.posterior_log_variance_clipped[3], math.log(sched.betas[5])]


def test_tables_are_read_only_copies() -> None:
    coef = np.linspace(0.1, 0.9, 3)
    fields = {name: coef for name in ("model_t", "sqrt_recip_acp", "sqrt_recipm1_acp", "coef_x0",
                                      "coef_x", "coef_x0_prev", "noise_std", "noise_v_scale")}
    table = SamplerTable("ddim", 3, 0.0, True, "3", **fields)
    assert coef.flags.writeable  # the caller's array is left alone ...
    coef[0] = 5.0
    assert table.coef_x[0] == 0.1  # ... and not shared
    with pytest.raises(ValueError, match="read-only"):
        table.coef_x[0] = 1.0
    assert not sampler_table("ddim", 4).noise_std.flags.writeable


def test_no_previous_x0_means_zeros() -> None:
    table = sampler_table("dpmpp2m", 5)
    assert table.coef_x0_prev[1] != 0
    x, eps, v, z = (np.full(3, c) for c in (0.3, -0.2, 0.1, 0.7))
    none, _ = apply_update(table, 1, x, eps, v, z, None)
    zeros, _ = apply_update(table, 1, x, eps, v, z, np.zeros(3))
    np.testing.assert_array_equal(none, zeros)


def test_frame_index_policies() -> None:
    assert [frame_index(f, 16) for f in (1, 13, 14, 15, 99)] == [1, 13, 14, 14, 14]
    assert [frame_index(f, 16, "extrapolate") for f in (1, 15, 99)] == [1, 15, 99]
    assert frame_index(5, 4) == 2
    with pytest.raises(ValueError, match="unknown frame index policy 'wrap': choose clamp or "
                                         "extrapolate"):
        frame_index(3, 16, "wrap")
