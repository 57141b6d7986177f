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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUM_TRAIN_TIMESTEPS = 1000
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


# --------------------------------------------------------------------------------------------
# Base schedule and respacing (guided_diffusion semantics)
# --------------------------------------------------------------------------------------------


def linear_betas(num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> np.ndarray:
    """guided_diffusion's "linear" beta schedule, scaled so any T matches the T=1000 process."""
    if int(num_timesteps) != num_timesteps or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}")
    num_timesteps = int(num_timesteps)
    scale = 1000 / num_timesteps
    return np.linspace(scale * 0.0001, scale * 0.02, num_timesteps, dtype=np.float64)


def _parse_section_counts(spacing: int | str | Sequence[int]) -> list[int]:
    if isinstance(spacing, bool):
        raise ValueError(f"bad spacing {spacing!r}")
    if isinstance(spacing, (int, np.integer)):
        return [int(spacing)]
    if isinstance(spacing, str):
        try:
            return [int(part) for part in spacing.split(",")]
        except ValueError:
            raise ValueError(
                f"bad spacing {spacing!r}: expected 'N', 'N1,N2,...' or 'ddimN'"
            ) from None
    try:
        return [int(part) for part in spacing]
    except (TypeError, ValueError):
        raise ValueError(f"bad spacing {spacing!r}") from None


def space_timesteps(num_timesteps: int, spacing: int | str | Sequence[int]) -> np.ndarray:
    """Original timesteps kept by a respaced process (guided_diffusion ``space_timesteps``).

    ``"N"`` / ``N`` / ``"N1,N2,..."``: the original process is cut into equal sections (the first
    ``T % len`` sections one step longer) and each section is strided to its count with
    fractional stride ``(size-1)/(count-1)`` and Python ``round``.  ``"ddimN"``: the smallest
    integer stride with ``len(range(0, T, stride)) == N``; ``ValueError`` if there is none.
    ``"linspaceN"``: the N largest of ``round(linspace(0, T-1, N+1))`` (diffusers' spacing),
    which leaves out t=0; the default for dpmpp2m.
    Returns the sorted unique timesteps as int64.
    """
    if int(num_timesteps) != num_timesteps or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps!r}")
    num_timesteps = int(num_timesteps)
    if isinstance(spacing, str) and spacing.startswith("linspace"):
        try:
            desired = int(spacing[len("linspace") :])
        except ValueError:
            raise ValueError(f"bad spacing {spacing!r}: expected 'linspaceN'") from None
        if not 1 <= desired <= num_timesteps - 1:
            raise ValueError(f"bad spacing {spacing!r}: N must be in [1, {num_timesteps - 1}]")
        # diffusers' "linspace" spacing: the N largest of N+1 evenly spaced points, so the
        # network is never evaluated at t=0 and the last model step lands on a moderate SNR.
        points = np.round(np.linspace(0, num_timesteps - 1, desired + 1))[1:]
        return np.unique(points.astype(np.int64))
    if isinstance(spacing, str) and spacing.startswith("ddim"):
        try:
            desired = int(spacing[len("ddim") :])
        except ValueError:
            raise ValueError(f"bad spacing {spacing!r}: expected 'ddimN'") from None
        # Same search range as guided_diffusion (stride < T), so e.g. "ddim1" is rejected there
        # and here alike.
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == desired:
                return np.arange(0, num_timesteps, stride, dtype=np.int64)
        raise ValueError(
            f"cannot create exactly {desired} steps from {num_timesteps} with an integer stride "
            f"(spacing {spacing!r})"
        )

    counts = _parse_section_counts(spacing)
    if not counts or any(c < 0 for c in counts):
        raise ValueError(f"bad spacing {spacing!r}: section counts must be >= 0")
    size_per, extra = divmod(num_timesteps, len(counts))
    start = 0
    steps: list[int] = []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(
                f"cannot divide a section of {size} steps into {count} (spacing "
                f"{spacing!r}, {num_timesteps} timesteps)"
            )
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        # Accumulate the index like guided_diffusion does (not i*stride) so that float rounding
        # at .5 ties picks exactly the same timesteps as the reference implementation.
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    if not steps:
        raise ValueError(f"bad spacing {spacing!r}: selects no timesteps")
    return np.unique(np.asarray(steps, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------


def _readonly(a: Any, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Schedule:
    """A (possibly respaced) diffusion process, as guided_diffusion's GaussianDiffusion sees it.

    Index ``i`` refers to the i-th kept timestep in ascending order; ``timesteps[i]`` is its
    original timestep.
    """

    timesteps: np.ndarray
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    posterior_variance: np.ndarray
    posterior_log_variance_clipped: np.ndarray
    posterior_mean_coef1: np.ndarray
    posterior_mean_coef2: np.ndarray

    def __len__(self) -> int:
        return int(self.timesteps.shape[0])


def make_schedule(
    spacing: int | str | Sequence[int] | None = None,
    num_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> Schedule:
    """Build the respaced process for ``spacing`` (``None``: all ``num_timesteps`` steps)."""
    base_betas = linear_betas(num_timesteps)
    base_acp = np.cumprod(1.0 - base_betas)
    if spacing is None:
        kept = np.arange(num_timesteps, dtype=np.int64)
    else:
        kept = space_timesteps(num_timesteps, spacing)

    # guided_diffusion SpacedDiffusion: betas from acp ratios of the kept timesteps, then the
    # whole process is recomputed from those betas (cumprod), which we mirror bit for bit.
    betas = np.empty(len(kept), dtype=np.float64)
    last = 1.0
    for i, t in enumerate(kept):
        betas[i] = 1.0 - base_acp[t] / last
        last = base_acp[t]
    if not (np.all(betas > 0) and np.all(betas <= 1)):
        raise ValueError("respaced betas must lie in (0, 1]")

    alphas = 1.0 - betas
    acp = np.cumprod(alphas)
    acp_prev = np.append(1.0, acp[:-1])
    post_var = betas * (1.0 - acp_prev) / (1.0 - acp)
    # Entry 0 of the posterior variance is 0 (log -inf); guided_diffusion substitutes entry 1.
    # With a single kept timestep there is no entry 1: fall back to beta_0 (only the final,
    # noise-free step uses index 0, so this value never reaches a sample).
    first = post_var[1] if len(post_var) > 1 else betas[0]
    post_log_var = np.log(np.append(first, post_var[1:]))
    coef1 = betas * np.sqrt(acp_prev) / (1.0 - acp)
    coef2 = (1.0 - acp_prev) * np.sqrt(alphas) / (1.0 - acp)
    return Schedule(
        timesteps=_readonly(kept, np.int64),
        betas=_readonly(betas),
        alphas_cumprod=_readonly(acp),
        alphas_cumprod_prev=_readonly(acp_prev),
        posterior_variance=_readonly(post_var),
        posterior_log_variance_clipped=_readonly(post_log_var),
        posterior_mean_coef1=_readonly(coef1),
        posterior_mean_coef2=_readonly(coef2),
    )


def learned_range_log_variance(schedule: Schedule, index: Any, v: Any) -> Any:
    """guided_diffusion "learned range" log variance at respaced ``index`` for model output v.

    ``v = 1`` gives ``log(beta)``, ``v = -1`` the clipped posterior log variance.  Works for
    numpy arrays, Python floats and (with an integer index) torch tensors.
    """
    max_log = np.log(schedule.betas[index])
    min_log = schedule.posterior_log_variance_clipped[index]
    if np.ndim(max_log) == 0:
        # Plain floats keep torch tensors as torch tensors (and their dtype) under arithmetic.
        max_log, min_log = float(max_log), float(min_log)
    frac = (v + 1) / 2
    return frac * max_log + (1 - frac) * min_log


# --------------------------------------------------------------------------------------------
# Sampler tables
# --------------------------------------------------------------------------------------------

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
            arr = _readonly(getattr(self, name))
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


FRAME_INDEX_POLICIES = ("clamp", "extrapolate")


def frame_index(frame: int, train_frames: int, policy: str = "clamp") -> int:
    """The frame index k fed to the motion model for video frame `frame` (>= 1).

    VIDM trains k in [1, F-2]. "clamp" holds k at F-2 past that range, so longer videos keep
    feeding a trained positional code; "extrapolate" feeds k = frame.
    """
    if policy not in FRAME_INDEX_POLICIES:
        raise ValueError(f"unknown frame index policy {policy!r}: choose clamp or extrapolate")
    return frame if policy == "extrapolate" else min(frame, train_frames - 2)
