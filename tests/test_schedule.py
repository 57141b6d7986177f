"""Tests for vidm_rt.schedule.

Expected values are recomputed here from the definitions with plain Python loops and ``math``
rather than through the module's helpers, so a shared mistake cannot hide.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vidm_rt.schedule import (
    NUM_TRAIN_TIMESTEPS,
    SAMPLERS,
    SamplerTable,
    apply_update,
    learned_range_log_variance,
    linear_betas,
    make_schedule,
    sampler_table,
    space_timesteps,
)

T = NUM_TRAIN_TIMESTEPS


def _ref_betas(n: int = T) -> list[float]:
    scale = 1000 / n
    lo, hi = scale * 1e-4, scale * 0.02
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _ref_acp(n: int = T) -> list[float]:
    out, p = [], 1.0
    for b in _ref_betas(n):
        p *= 1.0 - b
        out.append(p)
    return out


BETAS = _ref_betas()
ACP = _ref_acp()


def _ref_respaced_betas(kept: list[int]) -> list[float]:
    out, last = [], 1.0
    for t in kept:
        out.append(1.0 - ACP[t] / last)
        last = ACP[t]
    return out


def _ref_section_steps(total: int, counts: list[int]) -> list[int]:
    size_per, extra = divmod(total, len(counts))
    start, steps = 0, []
    for k, count in enumerate(counts):
        size = size_per + (1 if k < extra else 0)
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        steps += [start + round(i * stride) for i in range(count)]
        start += size
    return sorted(set(steps))


def _acp_at(t: int) -> float:
    return ACP[t]


# ------------------------------------------------------------------------------------------
# Base schedule and respacing
# ------------------------------------------------------------------------------------------


def test_linear_betas_and_alphas_cumprod():
    b = linear_betas(T)
    assert b.dtype == np.float64 and b.shape == (T,)
    assert b[0] == pytest.approx(1e-4, rel=1e-14)
    assert b[-1] == pytest.approx(0.02, rel=1e-14)
    np.testing.assert_allclose(b, BETAS, rtol=1e-12, atol=0)
    sched = make_schedule(None)
    np.testing.assert_array_equal(sched.timesteps, np.arange(T))
    np.testing.assert_allclose(sched.betas, BETAS, rtol=1e-12)
    np.testing.assert_allclose(sched.alphas_cumprod, ACP, rtol=1e-12)
    assert sched.alphas_cumprod_prev[0] == 1.0
    np.testing.assert_allclose(sched.alphas_cumprod_prev[1:], ACP[:-1], rtol=1e-12)
    # Other T: scaled so the process matches T=1000 in "time".
    b250 = linear_betas(250)
    assert b250[0] == pytest.approx(4e-4) and b250[-1] == pytest.approx(0.08)


def test_space_timesteps_even_spacing():
    st = space_timesteps(T, "100")
    assert st.dtype == np.int64 and len(st) == 100
    assert list(st[:6]) == [0, 10, 20, 30, 40, 50]
    assert st[-1] == 999
    assert list(st) == _ref_section_steps(T, [100])
    np.testing.assert_array_equal(space_timesteps(T, 100), st)
    assert list(space_timesteps(T, "10,15,20")) == _ref_section_steps(T, [10, 15, 20])
    assert list(space_timesteps(T, "1")) == [0]
    assert list(space_timesteps(T, "1000")) == list(range(T))


def test_space_timesteps_ddim():
    assert list(space_timesteps(T, "ddim100")) == list(range(0, T, 10))
    assert list(space_timesteps(T, "ddim50")) == list(range(0, T, 20))
    # guided_diffusion searches strides 1..T-1 for len(range(0, T, stride)) == N: for 7 the
    # smallest is 143 (ceil(1000/143) == 7) ...
    assert list(space_timesteps(T, "ddim7")) == list(range(0, T, 143))
    # ... and raises when no stride gives exactly N steps.
    for bad in ("ddim400", "ddim999", "ddim1", "ddim0"):
        with pytest.raises(ValueError):
            space_timesteps(T, bad)


@pytest.mark.parametrize("bad", ["abc", "ddimx", "", "1001", "10,-1", "0", "600,10"])
def test_space_timesteps_rejects_bad_spacing(bad):
    with pytest.raises(ValueError):
        space_timesteps(T, bad)


@pytest.mark.parametrize(
    "spacing, kept",
    [
        ("100", _ref_section_steps(T, [100])),
        ("ddim50", list(range(0, T, 20))),
        ("10,20", _ref_section_steps(T, [10, 20])),
    ],
)
def test_respaced_schedule_matches_definition(spacing, kept):
    sched = make_schedule(spacing)
    assert list(sched.timesteps) == kept
    betas = _ref_respaced_betas(kept)
    np.testing.assert_allclose(sched.betas, betas, rtol=1e-10)
    acp_kept = [ACP[t] for t in kept]
    np.testing.assert_allclose(sched.alphas_cumprod, acp_kept, rtol=1e-12)
    acp_prev = [1.0] + acp_kept[:-1]
    post_var = [b * (1 - ap) / (1 - a) for b, a, ap in zip(betas, acp_kept, acp_prev, strict=True)]
    np.testing.assert_allclose(sched.posterior_variance, post_var, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(
        sched.posterior_log_variance_clipped,
        [math.log(post_var[1])] + [math.log(p) for p in post_var[1:]],
        rtol=1e-9,
    )
    coef1 = [
        b * math.sqrt(ap) / (1 - a) for b, a, ap in zip(betas, acp_kept, acp_prev, strict=True)
    ]
    coef2 = [
        (1 - ap) * math.sqrt(1 - b) / (1 - a)
        for b, a, ap in zip(betas, acp_kept, acp_prev, strict=True)
    ]
    np.testing.assert_allclose(sched.posterior_mean_coef1, coef1, rtol=1e-9)
    np.testing.assert_allclose(sched.posterior_mean_coef2, coef2, rtol=1e-9, atol=1e-300)


# ------------------------------------------------------------------------------------------
# Learned-range variance and the ancestral sampler
# ------------------------------------------------------------------------------------------


def test_learned_range_log_variance():
    sched = make_schedule(None)
    for j in (1, 2, 500, 999):
        log_beta = math.log(BETAS[j])
        post = BETAS[j] * (1 - ACP[j - 1]) / (1 - ACP[j])
        log_post = math.log(post)
        assert learned_range_log_variance(sched, j, 1.0) == pytest.approx(log_beta, rel=1e-10)
        assert learned_range_log_variance(sched, j, -1.0) == pytest.approx(log_post, rel=1e-10)
        assert learned_range_log_variance(sched, j, 0.0) == pytest.approx(
            (log_beta + log_post) / 2, rel=1e-10
        )
    # Index 0: clipped value substitutes the (zero) posterior variance with index 1's.
    post1 = BETAS[1] * (1 - ACP[0]) / (1 - ACP[1])
    assert learned_range_log_variance(sched, 0, -1.0) == pytest.approx(math.log(post1))
    v = np.linspace(-1, 1, 5)
    out = learned_range_log_variance(sched, 10, v)
    assert out.shape == (5,) and np.all(np.diff(out) > 0)


def test_ancestral_noise_term_equals_learned_std():
    table = sampler_table("ancestral", 100)
    sched = make_schedule("100")
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, size=(3, 4, 4))
    z = np.ones_like(v)
    zeros = np.zeros_like(v)
    kept = list(sched.timesteps)
    betas = _ref_respaced_betas(kept)
    for i in (0, 1, 50, 98):
        j = 99 - i
        acp_j, acp_p = ACP[kept[j]], ACP[kept[j - 1]]
        log_post = math.log(betas[j] * (1 - acp_p) / (1 - acp_j))
        frac = (v + 1) / 2
        expected_std = np.exp(0.5 * (frac * math.log(betas[j]) + (1 - frac) * log_post))
        # x = eps = 0 gives x0 = 0, so x_next is exactly the noise term.
        x_next, _ = apply_update(table, i, zeros, zeros, v, z, zeros)
        np.testing.assert_allclose(x_next, expected_std, rtol=1e-10)
        np.testing.assert_allclose(
            x_next, np.exp(0.5 * learned_range_log_variance(sched, j, v)), rtol=1e-12
        )
    # Last step: no noise whatever v and z are.
    x_last, x0 = apply_update(table, 99, zeros, zeros, v, z, zeros)
    np.testing.assert_array_equal(x_last, zeros)


@pytest.mark.parametrize("i", [0, 1, 123, 500, 997, 998, 999])
def test_ancestral_full_schedule_is_ddpm_posterior(i):
    table = sampler_table("ancestral", T)
    t = T - 1 - i
    assert table.model_t[i] == t
    rng = np.random.default_rng(i)
    x = rng.normal(size=(2, 3, 8, 8))
    x0 = rng.uniform(-0.9, 0.9, size=x.shape)
    r, m = table.sqrt_recip_acp[i], table.sqrt_recipm1_acp[i]
    assert r == pytest.approx(1 / math.sqrt(ACP[t]), rel=1e-12)
    assert m == pytest.approx(math.sqrt(1 / ACP[t] - 1), rel=1e-10)
    eps = (r * x - x0) / m
    zeros = np.zeros_like(x)
    mean, x0_hat = apply_update(table, i, x, eps, rng.normal(size=x.shape), zeros, zeros)
    np.testing.assert_allclose(x0_hat, x0, atol=1e-10)
    acp_prev = ACP[t - 1] if t > 0 else 1.0
    mu = (
        math.sqrt(acp_prev) * BETAS[t] / (1 - ACP[t]) * x0
        + math.sqrt(1 - BETAS[t]) * (1 - acp_prev) / (1 - ACP[t]) * x
    )
    np.testing.assert_allclose(mean, mu, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------
# DDIM
# ------------------------------------------------------------------------------------------


def test_ddim_eta0_is_deterministic_and_matches_guided_diffusion():
    table = sampler_table("ddim", 50)
    assert table.spacing == "ddim50"
    assert np.all(table.noise_std == 0) and np.all(table.noise_v_scale == 0)
    assert not table.uses_noise and not table.uses_x0_prev
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 6))
    eps = rng.normal(size=x.shape)
    v = rng.normal(size=x.shape)
    zeros = np.zeros_like(x)
    for i in (0, 10, 48):
        a1, x0a = apply_update(table, i, x, eps, v, rng.normal(size=x.shape), zeros)
        a2, _ = apply_update(table, i, x, eps, v, 10 * rng.normal(size=x.shape), zeros)
        np.testing.assert_array_equal(a1, a2)
        # guided_diffusion ddim_sample, eta = 0, written out directly.
        t, t_prev = 980 - 20 * i, 980 - 20 * (i + 1)
        acp, acp_prev = ACP[t], ACP[t_prev]
        x0 = np.clip(x / math.sqrt(acp) - math.sqrt(1 / acp - 1) * eps, -1, 1)
        eps_re = (x / math.sqrt(acp) - x0) / math.sqrt(1 / acp - 1)
        expected = math.sqrt(acp_prev) * x0 + math.sqrt(1 - acp_prev) * eps_re
        np.testing.assert_allclose(a1, expected, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(x0a, x0, atol=1e-12)


def test_ddim_eta1_variance_is_ddpm_posterior_variance():
    table = sampler_table("ddim", 50, eta=1.0)
    kept = list(range(0, T, 20))
    betas = _ref_respaced_betas(kept)
    for i in range(49):
        j = 49 - i
        acp_j, acp_p = ACP[kept[j]], ACP[kept[j - 1]]
        post_var = betas[j] * (1 - acp_p) / (1 - acp_j)
        assert table.noise_std[i] ** 2 == pytest.approx(post_var, rel=1e-9)
    assert table.noise_std[-1] == 0
    half = sampler_table("ddim", 50, eta=0.5)
    np.testing.assert_allclose(half.noise_std, 0.5 * table.noise_std, rtol=1e-12)


def test_ddim_default_spacing_falls_back_when_no_stride():
    # No integer stride gives 400 steps of 1000, so "400" (even fractional spacing) is used.
    assert sampler_table("ddim", 400).spacing == "400"
    assert sampler_table("ddim", 10).spacing == "ddim10"


# ------------------------------------------------------------------------------------------
# Toy Gaussian: exact probability-flow ODE solution
# ------------------------------------------------------------------------------------------

# Per-dimension data std (independent Gaussians); covers small, unit and large data variance.
S0 = np.array([0.5, 1.0, 2.0])
X_T = np.array([1.2, -0.7, 2.0])


def _run_toy(table: SamplerTable) -> np.ndarray:
    x = X_T.copy()
    x0_prev = np.zeros_like(x)
    zeros = np.zeros_like(x)
    for i in range(table.steps):
        acp = ACP[int(table.model_t[i])]
        alpha, sigma = math.sqrt(acp), math.sqrt(1 - acp)
        # Exact eps predictor for data ~ N(0, S0^2).
        eps = sigma * x / (alpha**2 * S0**2 + sigma**2)
        x, x0_prev = apply_update(table, i, x, eps, zeros, zeros, x0_prev)
    return x


def _exact_toy(table: SamplerTable) -> np.ndarray:
    t_hi, t_lo = int(table.model_t[0]), int(table.model_t[-1])

    def var(t: int) -> np.ndarray:
        return ACP[t] * S0**2 + (1 - ACP[t])

    # The PF-ODE keeps x / sqrt(marginal variance) constant; the last step outputs the exact
    # x0 prediction D(x, t_lo) = alpha s0^2 x / var at the lowest timestep.
    x_lo = X_T * np.sqrt(var(t_lo) / var(t_hi))
    return math.sqrt(ACP[t_lo]) * S0**2 * x_lo / var(t_lo)


def _toy_error(sampler: str, steps: int, **kw) -> float:
    table = sampler_table(sampler, steps, clip_x0=False, **kw)
    exact = _exact_toy(table)
    return float(np.max(np.abs(_run_toy(table) - exact) / np.abs(exact)))


def test_linspace_spacing():
    # diffusers' "linspace": the top N of N+1 evenly spaced points over 0..999.
    got = space_timesteps(1000, "linspace20")
    expected = sorted({int(np.round(999 * i / 20)) for i in range(1, 21)})
    assert got.tolist() == expected and got[0] == 50 and got[-1] == 999
    assert sampler_table("dpmpp2m", 20).spacing == "linspace20"
    with pytest.raises(ValueError, match="linspace"):
        space_timesteps(1000, "linspace1000")


def test_dpmpp2m_first_order_part_is_ddim():
    # DPM-Solver++(1) is DDIM(eta=0): a + c and b must match DDIM on the same spacing.
    dpm = sampler_table("dpmpp2m", 25)
    ddim = sampler_table("ddim", 25, spacing=dpm.spacing)
    np.testing.assert_allclose(dpm.coef_x0 + dpm.coef_x0_prev, ddim.coef_x0, rtol=1e-10)
    np.testing.assert_allclose(dpm.coef_x, ddim.coef_x, rtol=1e-12)
    assert dpm.coef_x0_prev[0] == 0 and dpm.coef_x0_prev[-1] == 0
    assert np.all(dpm.coef_x0_prev[1:-1] < 0) and dpm.uses_x0_prev


def test_dpmpp2m_toy_gaussian_second_order():
    ns = (20, 40, 80, 160, 320)
    # The order is measured on evenly spaced timesteps that all end at t=0 (a fixed target);
    # the default spacing moves its lowest timestep with n (see the test below).
    errs = {n: _toy_error("dpmpp2m", n, spacing=str(n)) for n in ns}
    # First-order reference on the same timesteps: DDIM(eta=0) == DPM-Solver++(1).
    errs1 = {n: _toy_error("ddim", n, spacing=str(n)) for n in ns}
    assert errs[20] < 0.3 and errs[40] < 0.1 and errs[80] < 0.025 and errs[160] < 0.007
    # Second order: halving the step size cuts the error ~4x (first order: ~2x).  The last
    # step is exact here (it returns D at the lowest timestep), so it does not mask the order.
    # 20 -> 40 is left out: with even spacing the step into t=0 spans a large log-SNR jump
    # (h ~ 2.9 at 20 steps) and is not yet in the asymptotic regime.
    for n in (40, 80, 160):
        assert errs[n] / errs[2 * n] > 3.0, (n, errs)
        assert errs1[n] / errs1[2 * n] < 2.5, (n, errs1)
    assert errs[80] < errs1[80] and errs[160] < errs1[160] / 2.5
    assert errs[320] < errs1[320] / 5


def test_dpmpp2m_default_spacing_is_accurate_at_few_steps():
    # Measured: 0.022 at 10 steps and 0.016 at 20 (DDIM on the same timesteps: 0.128, 0.086).
    for n, bound in ((10, 0.03), (20, 0.02)):
        err = _toy_error("dpmpp2m", n)
        assert err < bound
        assert err < _toy_error("ddim", n, spacing=f"linspace{n}") / 4


def test_ddim_toy_gaussian_first_order():
    errs = {n: _toy_error("ddim", n) for n in (25, 50, 100, 200)}
    assert errs[200] < 0.02
    for n in (25, 50, 100):
        assert 1.6 < errs[n] / errs[2 * n] < 2.5


# ------------------------------------------------------------------------------------------
# Table invariants, serialisation, validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", [1, 2, 3, 10, 50, 1000])
def test_table_invariants_and_round_trip(sampler, steps):
    eta = 0.7 if sampler == "ddim" else 0.0
    table = sampler_table(sampler, steps, eta=eta)
    for name in (
        "model_t",
        "sqrt_recip_acp",
        "sqrt_recipm1_acp",
        "coef_x0",
        "coef_x",
        "coef_x0_prev",
        "noise_std",
        "noise_v_scale",
    ):
        arr = getattr(table, name)
        assert arr.shape == (steps,) and arr.dtype == np.float64, name
        assert np.all(np.isfinite(arr)), name
    assert np.all(np.diff(table.model_t) < 0)
    # dpmpp2m's default "linspaceN" spacing leaves t=0 out (see test_linspace_spacing).
    lowest = round(999 / steps) if sampler == "dpmpp2m" and steps < 1000 else 0
    assert table.model_t[-1] == lowest and np.all(table.model_t == np.round(table.model_t))
    assert table.coef_x0[-1] == 1 and table.coef_x[-1] == 0
    assert table.coef_x0_prev[-1] == 0 and table.noise_std[-1] == 0
    assert table.noise_v_scale[-1] == 0
    assert np.all(table.noise_std >= 0)

    d = json.loads(json.dumps(table.to_dict()))
    back = SamplerTable.from_dict(d)
    assert back.to_dict() == table.to_dict()
    for name in ("model_t", "coef_x0", "coef_x0_prev", "noise_std", "noise_v_scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(table, name))
    assert (back.sampler, back.steps, back.eta, back.clip_x0, back.spacing) == (
        table.sampler,
        table.steps,
        table.eta,
        table.clip_x0,
        table.spacing,
    )

    coeffs = table.coefficients()
    assert coeffs.dtype == np.float32 and coeffs.shape == (steps, 7)
    order = [
        table.sqrt_recip_acp,
        table.sqrt_recipm1_acp,
        table.coef_x0,
        table.coef_x,
        table.coef_x0_prev,
        table.noise_std,
        table.noise_v_scale,
    ]
    np.testing.assert_array_equal(coeffs, np.stack(order, 1).astype(np.float32))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_final_output_is_clipped_x0(sampler):
    table = sampler_table(sampler, 10)
    rng = np.random.default_rng(3)
    x = 3 * rng.normal(size=(4, 4))
    eps = rng.normal(size=x.shape)
    z, x0_prev = rng.normal(size=x.shape), rng.normal(size=x.shape)
    out, x0 = apply_update(table, 9, x, eps, eps, z, x0_prev)
    np.testing.assert_array_equal(out, x0)
    assert np.max(np.abs(x0)) <= 1.0
    np.testing.assert_allclose(
        x0, np.clip(x * table.sqrt_recip_acp[9] - eps * table.sqrt_recipm1_acp[9], -1, 1)
    )


def test_clip_argument_and_no_clip():
    table = sampler_table("ddim", 10)
    x = np.array([5.0, -5.0, 0.1])
    calls = []

    def my_clip(a, lo, hi):
        calls.append((lo, hi))
        return np.clip(a, lo, hi)

    ref = apply_update(table, 3, x, 0 * x, 0 * x, 0 * x, None)
    got = apply_update(table, 3, x, 0 * x, 0 * x, 0 * x, None, clip=my_clip)
    assert calls == [(-1.0, 1.0)]
    np.testing.assert_array_equal(ref[0], got[0])
    _, x0 = apply_update(sampler_table("ddim", 10, clip_x0=False), 3, x, 0 * x, 0 * x, 0 * x, None)
    assert np.max(np.abs(x0)) > 1


def test_validation_errors():
    with pytest.raises(ValueError, match="ancestral.*ddim.*dpmpp2m"):
        sampler_table("euler", 10)
    for steps in (0, -1, T + 1):
        with pytest.raises(ValueError, match="steps"):
            sampler_table("ddim", steps)
    with pytest.raises(ValueError, match="eta"):
        sampler_table("ddim", 10, eta=-0.1)
    with pytest.raises(ValueError, match="eta"):
        sampler_table("ancestral", 10, eta=1.0)
    with pytest.raises(ValueError, match="selects"):
        sampler_table("ddim", 10, spacing="20")
    with pytest.raises(ValueError):
        sampler_table("dpmpp2m", 10, spacing="ten")
    with pytest.raises(ValueError):
        make_schedule("ddim7x")
    d = sampler_table("ddim", 5).to_dict()
    d["coef_x"] = d["coef_x"][:-1]
    with pytest.raises(ValueError, match="coef_x"):
        SamplerTable.from_dict(d)
    with pytest.raises(ValueError, match="lacks"):
        SamplerTable.from_dict({"sampler": "ddim"})
    with pytest.raises(IndexError):
        apply_update(sampler_table("ddim", 5), 5, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_float32_arrays_stay_float32():
    table = sampler_table("ancestral", 20)
    x = np.ones((2, 2), np.float32)
    out, x0 = apply_update(table, 5, x, x, x, x, x)
    assert out.dtype == np.float32 and x0.dtype == np.float32


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_apply_update_torch_matches_numpy(sampler):
    torch = pytest.importorskip("torch")
    table = sampler_table(sampler, 20, eta=1.0 if sampler == "ddim" else 0.0)
    rng = np.random.default_rng(7)
    arrs = [rng.normal(size=(1, 3, 5, 5)) for _ in range(5)]
    arrs[0] *= 3  # exercise clipping
    for i in (0, 7, 19):
        ref = apply_update(table, i, *arrs)
        got = apply_update(table, i, *[torch.from_numpy(a) for a in arrs], exp=torch.exp)
        for r, g in zip(ref, got, strict=True):
            assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
            np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-12)
    t32 = [torch.from_numpy(a.astype(np.float32)) for a in arrs]
    out, _ = apply_update(table, 3, *t32, exp=torch.exp, clip=torch.clamp)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), apply_update(table, 3, *arrs)[0], rtol=1e-4, atol=1e-5)
