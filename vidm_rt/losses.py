"""VIDM's training loss: P2-weighted eps-MSE plus the variational bound for the learned variance.

For x_t = sqrt(acp_t) x0 + sqrt(1 - acp_t) eps and a model output (eps_hat, v):

    mse = mean(w_t (eps - eps_hat)^2),        w_t = 1 / (k + SNR_t)^gamma,  SNR = acp/(1-acp)
    vb  = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) / log 2     (bits per dimension), t > 0
        = -log p(x0 | x_1) / log 2 (discretised Gaussian decoder),                     t = 0

where p's mean uses eps_hat with gradients stopped (so vb trains only v: guided_diffusion's
hybrid loss) and p's log variance is the learned range f log(beta_t) + (1-f) log(beta~_t),
f = (v+1)/2. The loss is mse + vb, averaged over the batch (P2-weighting, Choi et al. 2022).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import DiffusionConfig
from .schedule import make_schedule


class DiffusionLoss:
    """The loss and the forward process on the full (unrespaced) training schedule."""

    def __init__(self, cfg: DiffusionConfig, device: torch.device | str = "cpu") -> None:
        sched = make_schedule(None, cfg.num_timesteps)
        acp = sched.alphas_cumprod
        snr = acp / (1.0 - acp)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(a, dtype=torch.float32, device=device)

        self.num_timesteps = cfg.num_timesteps
        self.sqrt_acp = tensor(np.sqrt(acp))
        self.sqrt_1m_acp = tensor(np.sqrt(1.0 - acp))
        self.sqrt_recip_acp = tensor(np.sqrt(1.0 / acp))
        self.sqrt_recipm1_acp = tensor(np.sqrt(1.0 / acp - 1.0))
        self.coef1 = tensor(sched.posterior_mean_coef1)
        self.coef2 = tensor(sched.posterior_mean_coef2)
        self.post_logvar = tensor(sched.posterior_log_variance_clipped)
        self.log_beta = tensor(np.log(sched.betas))
        self.p2_weight = tensor(1.0 / (cfg.p2_k + snr) ** cfg.p2_gamma)

    @staticmethod
    def _at(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return table[t][:, None, None, None]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t from x0 (B, C, H, W), integer t (B,) and eps."""
        return self._at(self.sqrt_acp, t) * x0 + self._at(self.sqrt_1m_acp, t) * noise

    def __call__(
        self,
        out: torch.Tensor,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Per-sample terms {"loss", "mse", "vb"}, each (B,), for model output (B, 2C, H, W)."""
        c = x0.shape[1]
        eps, v = out[:, :c].float(), out[:, c:].float()
        mse = (self._at(self.p2_weight, t) * (noise - eps) ** 2).mean(dim=(1, 2, 3))

        true_mean = self._at(self.coef1, t) * x0 + self._at(self.coef2, t) * x_t
        true_logvar = self._at(self.post_logvar, t)
        x0_hat = self._at(self.sqrt_recip_acp, t) * x_t - self._at(self.sqrt_recipm1_acp, t) * (
            eps.detach()
        )
        model_mean = self._at(self.coef1, t) * x0_hat + self._at(self.coef2, t) * x_t
        frac = (v + 1) / 2
        model_logvar = frac * self._at(self.log_beta, t) + (1 - frac) * true_logvar
        kl = normal_kl(true_mean, true_logvar, model_mean, model_logvar).mean(dim=(1, 2, 3))
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_logvar).mean(
            dim=(1, 2, 3)
        )
        vb = torch.where(t == 0, nll, kl) / math.log(2.0)
        return {"loss": mse + vb, "mse": mse, "vb": vb}


def normal_kl(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _approx_std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    # The tanh approximation guided_diffusion uses; kept for a faithful loss.
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(x) for x in [-1, 1] quantised to 256 levels under N(mean, e^(2 log_scale))."""
    inv_std = torch.exp(-log_scale)
    centered = x - mean
    cdf_plus = _approx_std_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta)
    )
