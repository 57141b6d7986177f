"""The hybrid loss against a direct float64 computation from its definition."""

from __future__ import annotations

import math

import numpy as np
import torch

from vidm_rt.config import DiffusionConfig
from vidm_rt.losses import DiffusionLoss


def _tables():
    betas = np.linspace(1e-4, 0.02, 1000)
    acp = np.cumprod(1 - betas)
    acp_prev = np.append(1.0, acp[:-1])
    post_var = betas * (1 - acp_prev) / (1 - acp)
    post_logvar = np.log(np.append(post_var[1], post_var[1:]))
    return betas, acp, acp_prev, post_logvar


def _cdf(x):
    return 0.5 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def test_loss_matches_direct_computation() -> None:
    betas, acp, acp_prev, post_logvar = _tables()
    rng = np.random.default_rng(0)
    b = 4
    x0 = rng.uniform(-1, 1, (b, 3, 2, 2))
    x0[0, 0, 0, 0], x0[0, 0, 0, 1] = -1.0, 1.0  # the decoder's edge bins
    noise = rng.standard_normal((b, 3, 2, 2))
    t = np.array([0, 1, 500, 999])
    out = rng.standard_normal((b, 6, 2, 2)) * 0.5
    out[:, 3:] = np.tanh(out[:, 3:])  # v in [-1, 1]

    loss_fn = DiffusionLoss(DiffusionConfig(p2_gamma=1.0, p2_k=1.0))
    x_t = loss_fn.q_sample(torch.tensor(x0, dtype=torch.float32), torch.tensor(t),
                           torch.tensor(noise, dtype=torch.float32))
    got = loss_fn(torch.tensor(out, dtype=torch.float32), torch.tensor(x0, dtype=torch.float32),
                  x_t, torch.tensor(t), torch.tensor(noise, dtype=torch.float32))

    for i, ti in enumerate(t):
        xt = math.sqrt(acp[ti]) * x0[i] + math.sqrt(1 - acp[ti]) * noise[i]
        np.testing.assert_allclose(x_t[i].numpy(), xt, atol=1e-5)
        eps, v = out[i, :3], out[i, 3:]
        snr = acp[ti] / (1 - acp[ti])
        mse = np.mean((noise[i] - eps) ** 2) / (1 + snr)
        c1 = betas[ti] * math.sqrt(acp_prev[ti]) / (1 - acp[ti])
        c2 = (1 - acp_prev[ti]) * math.sqrt(1 - betas[ti]) / (1 - acp[ti])
        x0_hat = xt / math.sqrt(acp[ti]) - math.sqrt(1 / acp[ti] - 1) * eps
        mean_p = c1 * x0_hat + c2 * xt
        logvar_p = (v + 1) / 2 * math.log(betas[ti]) + (1 - v) / 2 * post_logvar[ti]
        if ti > 0:
            mean_q = c1 * x0[i] + c2 * xt
            lq = post_logvar[ti]
            kl = 0.5 * (-1 + logvar_p - lq + np.exp(lq - logvar_p)
                        + (mean_q - mean_p) ** 2 * np.exp(-logvar_p))
            vb = np.mean(kl) / math.log(2)
        else:
            std = np.exp(0.5 * logvar_p)
            plus = _cdf((x0[i] - mean_p + 1 / 255) / std)
            minus = _cdf((x0[i] - mean_p - 1 / 255) / std)
            logp = np.where(x0[i] < -0.999, np.log(np.maximum(plus, 1e-12)),
                            np.where(x0[i] > 0.999, np.log(np.maximum(1 - minus, 1e-12)),
                                     np.log(np.maximum(plus - minus, 1e-12))))
            vb = -np.mean(logp) / math.log(2)
        assert math.isclose(got["mse"][i].item(), mse, rel_tol=2e-4), (ti, "mse")
        assert math.isclose(got["vb"][i].item(), vb, rel_tol=2e-3, abs_tol=1e-5), (ti, "vb")
        assert math.isclose(got["loss"][i].item(), mse + vb, rel_tol=2e-3, abs_tol=1e-5)


def test_vb_does_not_train_the_mean() -> None:
    loss_fn = DiffusionLoss(DiffusionConfig())
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([3, 700])
    out = torch.randn(2, 6, 4, 4, requires_grad=True)
    loss_fn(out, x0, loss_fn.q_sample(x0, t, noise), t, noise)["vb"].sum().backward()
    assert torch.count_nonzero(out.grad[:, :3]) == 0  # eps gets no gradient from vb
    assert torch.count_nonzero(out.grad[:, 3:]) > 0
