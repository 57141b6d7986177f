"""Diffusion schedules and sampler coefficient tables (numpy only, float64).

Every sampler the runtime supports is expressed as ONE per-step update with per-step scalar
coefficients, so that a static ONNX/TensorRT graph, a torch loop and a C++ loop can run any
sampler from the same table.  For step ``i`` (step 0 is the noisiest), with the current sample
``x``, the network output split into ``eps`` (3 channels) and ``v`` (3 channels, the
learned-range variance interpolator), standard normal noise ``z`` and ``x0_prev`` (the ``x0``
returned by the previous step, zeros at step 0)::

    x0     = r_i * x - m_i * eps            (clipped to [-1, 1] if clip_x0)
    x_next = a_i * x0 + b_i * x + c_i * x0_prev + s_i * exp(h_i * v) * z

with ``r_i = 1/sqrt(acp_i)`` and ``m_i = sqrt(1/acp_i - 1)`` (``acp`` = alphas_cumprod at the
timestep of step i).  The samplers only differ in ``a, b, c, s, h``:

ancestral
    guided_diffusion ``p_sample`` with learned-range variance.  At respaced index ``j = S-1-i``:
    ``a = posterior_mean_coef1[j]``, ``b = posterior_mean_coef2[j]``, ``c = 0``.  The
    learned-range std ``exp(0.5 * log_var)`` factorises as
    ``exp((L1 + L2)/4) * exp(v (L1 - L2)/4)`` with ``L1 = log(beta_j)`` and
    ``L2 = posterior_log_variance_clipped[j]``, hence ``s = exp((L1+L2)/4)``,
    ``h = (L1-L2)/4``; ``s = h = 0`` at ``j = 0`` (no noise on the last step).

ddim
    guided_diffusion ``ddim_sample``.  ``sigma = eta sqrt((1-acp')/(1-acp)) sqrt(1-acp/acp')``
    (``acp'`` = acp of the next, less noisy, timestep); eps is re-derived from the (clipped) x0,
    ``eps' = (r x - x0)/m``, and ``x_next = sqrt(acp') x0 + d eps' + sigma z`` with
    ``d = sqrt(1 - acp' - sigma^2)``.  Generic form: ``a = sqrt(acp') - d/m``, ``b = d r/m``,
    ``c = 0``, ``s = sigma``, ``h = 0``.

dpmpp2m
    DPM-Solver++(2M) (Lu et al. 2022), data prediction, VP parameterisation
    ``alpha = sqrt(acp)``, ``sigma = sqrt(1-acp)``, ``lambda = log(alpha/sigma)``.  From the
    current to the next timestep, ``h = lambda' - lambda`` and
    ``x_next = (sigma'/sigma) x + alpha' (1 - e^{-h}) D`` where ``D = x0`` on the first step,
    otherwise ``D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev`` with ``r = h_prev/h``.  So
    ``b = sigma'/sigma``, ``a = alpha'(1-e^{-h})(1 + 1/(2r))``, ``c = -alpha'(1-e^{-h})/(2r)``,
    ``s = h = 0``.

After the last step the "next" state is clean data (acp = 1), so every table ends with
``a = 1, b = c = s = h = 0``: the final output is the (clipped) x0 prediction at the lowest
timestep.  For dpmpp2m this is the lower-order final step (as in diffusers): with
``sigma' = 0`` the second-order correction is undefined (``r = 0``).
"""


from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .diffusion import NUM_TRAIN_TIMESTEPS, make_schedule, readonly, space_timesteps

SAMPLERS = ("ancestral", "ddim", "dpmpp2m")
# Order of SamplerTable.coefficients() columns; graph and C++ runtimes index by this.
COEFFICIENT_NAMES = (
    "sqrt_recip_acp",
    "sqrt_recipm1_acp",
    "coef_x0",
    "coef_x",
    "coef_x0_prev",
    "noise_std",
    "noise_v_scale",
)
_ARRAY_FIELDS = ("model_t", *COEFFICIENT_NAMES)


@dataclass(frozen=True, eq=False)
class SamplerTable:
    """Per-step coefficients of one sampler for the generic update (see module docstring)."""

    sampler: str
    steps: int
    eta: float
    clip_x0: bool
    spacing: str
    model_t: np.ndarray = field(repr=False)
    sqrt_recip_acp: np.ndarray = field(repr=False)
    sqrt_recipm1_acp: np.ndarray = field(repr=False)
    coef_x0: np.ndarray = field(repr=False)
    coef_x: np.ndarray = field(repr=False)
    coef_x0_prev: np.ndarray = field(repr=False)
    noise_std: np.ndarray = field(repr=False)
    noise_v_scale: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        for name in _ARRAY_FIELDS:
            arr = readonly(getattr(self, name))
            if arr.shape != (self.steps,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({self.steps},)")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} has non-finite entries")
            object.__setattr__(self, name, arr)

    @property
    def uses_x0_prev(self) -> bool:
        """Whether the update reads the previous step's x0 (multistep samplers)."""
        return bool(np.any(self.coef_x0_prev != 0))

    @property
    def uses_noise(self) -> bool:
        """Whether any step injects noise (stochastic samplers)."""
        return bool(np.any(self.noise_std != 0))

    def coefficients(self) -> np.ndarray:
        """(S, 7) float32 ``[r, m, a, b, c, s, h]`` per step, in COEFFICIENT_NAMES order."""
        return np.stack([getattr(self, n) for n in COEFFICIENT_NAMES], axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; Python floats survive json.dumps/loads exactly (shortest repr)."""
        d: dict[str, Any] = {
            "sampler": self.sampler,
            "steps": int(self.steps),
            "eta": float(self.eta),
            "clip_x0": bool(self.clip_x0),
            "spacing": str(self.spacing),
        }
        for name in _ARRAY_FIELDS:
            d[name] = [float(x) for x in getattr(self, name)]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerTable:
        missing = [
            k
            for k in ("sampler", "steps", "eta", "clip_x0", "spacing", *_ARRAY_FIELDS)
            if k not in d
        ]
        if missing:
            raise ValueError(f"sampler table dict lacks {missing}")
        return cls(
            sampler=str(d["sampler"]),
            steps=int(d["steps"]),
            eta=float(d["eta"]),
            clip_x0=bool(d["clip_x0"]),
            spacing=str(d["spacing"]),
            **{name: np.asarray(d[name], dtype=np.float64) for name in _ARRAY_FIELDS},
        )


def _default_spacing(sampler: str, steps: int, num_timesteps: int) -> str:
    if sampler == "dpmpp2m" and steps < num_timesteps:
        # Evaluating the model at t=0 makes the step before it a huge jump in log-SNR where the
        # second-order extrapolation overshoots (measured: 20 steps on a toy Gaussian, 0.24
        # relative error with "20" against 0.047 when that step is first order); skipping t=0 is
        # how DPM-Solver is normally run (diffusers' default).
        return f"linspace{steps}"
    if sampler == "ddim":
        # guided_diffusion's DDIM scripts use "ddimN"; not every N has an integer stride.
        try:
            space_timesteps(num_timesteps, f"ddim{steps}")
            return f"ddim{steps}"
        except ValueError:
            pass
    return str(steps)


def sampler_table(
    sampler: str,
    steps: int,
    *,
    eta: float = 0.0,
    clip_x0: bool = True,
    spacing: str | int | None = None,
    num_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> SamplerTable:
    """Coefficient table for ``sampler`` over ``steps`` steps (see the module docstring).

    ``spacing`` defaults to ``"ddim{steps}"`` for ddim (when such a stride exists) and to
    ``str(steps)`` otherwise; an explicit spacing must select exactly ``steps`` timesteps.
    ``eta`` is the DDIM stochasticity and must be 0 for the other samplers.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if isinstance(steps, bool) or int(steps) != steps:
        raise ValueError(f"steps must be an integer, got {steps!r}")
    steps = int(steps)
    if int(num_timesteps) != num_timesteps or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}")
    num_timesteps = int(num_timesteps)
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, {num_timesteps}], got {steps}")
    eta = float(eta)
    if not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0, got {eta}")
    if eta != 0 and sampler != "ddim":
        raise ValueError(f"eta only applies to the ddim sampler, got eta={eta} for {sampler!r}")

    spacing_str = (
        _default_spacing(sampler, steps, num_timesteps) if spacing is None else str(spacing)
    )
    sched = make_schedule(spacing_str, num_timesteps)
    if len(sched) != steps:
        raise ValueError(
            f"spacing {spacing_str!r} selects {len(sched)} timesteps but steps={steps}"
        )

    # Respaced index j for step i: steps run from the noisiest kept timestep downwards.
    j = np.arange(steps - 1, -1, -1)
    acp = sched.alphas_cumprod[j]
    acp_next = sched.alphas_cumprod_prev[j]  # 1.0 after the last step: clean data
    r = np.sqrt(1.0 / acp)
    m = np.sqrt(1.0 / acp - 1.0)
    a = np.zeros(steps)
    b = np.zeros(steps)
    c = np.zeros(steps)
    s = np.zeros(steps)
    h = np.zeros(steps)

    if sampler == "ancestral":
        a[:] = sched.posterior_mean_coef1[j]
        b[:] = sched.posterior_mean_coef2[j]
        log_beta = np.log(sched.betas[j])
        log_post = sched.posterior_log_variance_clipped[j]
        noisy = j > 0
        s[noisy] = np.exp((log_beta[noisy] + log_post[noisy]) / 4.0)
        h[noisy] = (log_beta[noisy] - log_post[noisy]) / 4.0
    elif sampler == "ddim":
        sigma = eta * np.sqrt((1.0 - acp_next) / (1.0 - acp)) * np.sqrt(1.0 - acp / acp_next)
        d2 = 1.0 - acp_next - sigma**2
        if np.any(d2 < -1e-12):
            raise ValueError(f"eta={eta} is too large: 1 - acp_prev - sigma^2 < 0")
        d = np.sqrt(np.maximum(d2, 0.0))
        a[:] = np.sqrt(acp_next) - d / m
        b[:] = d * r / m
        s[:] = sigma
    else:  # dpmpp2m
        alpha, sig = np.sqrt(acp), np.sqrt(1.0 - acp)
        lam = np.log(alpha) - np.log(sig)
        h_prev = 0.0
        for i in range(steps - 1):
            alpha_n, sig_n = math.sqrt(acp_next[i]), math.sqrt(1.0 - acp_next[i])
            h_i = (math.log(alpha_n) - math.log(sig_n)) - lam[i]
            # 1 - e^{-h} via expm1: h is small at fine spacings and the difference cancels.
            phi = -math.expm1(-h_i) * alpha_n
            b[i] = sig_n / sig[i]
            if i == 0:
                a[i] = phi
            else:
                half_inv_r = h_i / (2.0 * h_prev)
                a[i] = phi * (1.0 + half_inv_r)
                c[i] = -phi * half_inv_r
            h_prev = h_i

    # Last step lands on clean data (acp = 1): x_next = x0 exactly.  The closed forms give this
    # only up to rounding (e.g. beta_0/(1 - acp_0) for ancestral); pin it so the output is the
    # x0 prediction bit for bit, and dpmpp2m takes its lower-order final step here.
    a[-1], b[-1], c[-1], s[-1], h[-1] = 1.0, 0.0, 0.0, 0.0, 0.0

    return SamplerTable(
        sampler=sampler,
        steps=steps,
        eta=eta,
        clip_x0=bool(clip_x0),
        spacing=spacing_str,
        model_t=sched.timesteps[j].astype(np.float64),
        sqrt_recip_acp=r,
        sqrt_recipm1_acp=m,
        coef_x0=a,
        coef_x=b,
        coef_x0_prev=c,
        noise_std=s,
        noise_v_scale=h,
    )


def apply_update(
    table: SamplerTable,
    i: int,
    x: Any,
    eps: Any,
    v: Any,
    noise: Any,
    x0_prev: Any,
    exp: Callable[[Any], Any] = np.exp,
    clip: Callable[[Any, float, float], Any] | None = None,
) -> tuple[Any, Any]:
    """One generic sampler step; returns ``(x_next, x0)``.

    Works on numpy arrays and torch tensors alike: only arithmetic, ``exp`` (pass
    ``torch.exp`` for tensors) and clipping (``clip(x0, -1.0, 1.0)`` if given, else the
    ``.clip(-1.0, 1.0)`` method both libraries have).  ``x0_prev`` is the x0 returned by the
    previous step (zeros, or ``None``, at step 0).  The full formula is evaluated even where
    coefficients are zero, mirroring the static exported graph.
    """
    if not 0 <= i < table.steps:
        raise IndexError(f"step {i} out of range for a {table.steps}-step table")
    # Python floats: numpy scalars would upcast float32 tensors/arrays to float64.
    r = float(table.sqrt_recip_acp[i])
    m = float(table.sqrt_recipm1_acp[i])
    a = float(table.coef_x0[i])
    b = float(table.coef_x[i])
    c = float(table.coef_x0_prev[i])
    s = float(table.noise_std[i])
    h = float(table.noise_v_scale[i])

    x0 = r * x - m * eps
    if table.clip_x0:
        x0 = x0.clip(-1.0, 1.0) if clip is None else clip(x0, -1.0, 1.0)
    prev = 0.0 if x0_prev is None else x0_prev
    x_next = a * x0 + b * x + c * prev + s * exp(h * v) * noise
    return x_next, x0
