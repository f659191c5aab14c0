"""The forward (noising) process a denoiser is trained on, and its training loss.

Every noisy state is ``x = alpha * x0 + sigma * eps``. Two processes are supported:

- ``vp``: variance preserving (DDPM), ``alpha = sqrt(abar_t)``, ``sigma = sqrt(1 - abar_t)`` for
  integer ``t`` in [0, T), with the betas of a ``diffusers`` beta schedule;
- ``flow``: rectified flow, ``alpha = 1 - s``, ``sigma = s`` for ``s`` in [0, 1], time ``t = s * T``.

The model sees ``(x, t)`` in its own process and predicts ``eps``, ``v = alpha * eps - sigma * x0``
or the flow velocity ``eps - x0``. Whatever it predicts converts to (x0, eps), which is how any
sampler, even one written for the other process, can drive it (``t2v.diffusion.samplers``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from t2v.errors import T2VError

PREDICTIONS = ("eps", "v", "flow")
WEIGHTINGS = ("none", "min_snr")


@dataclass
class DiffusionConfig:
    """How a denoiser is trained and, by default, sampled."""

    prediction: str = "flow"  # eps | v (variance-preserving process) | flow (rectified flow)
    beta_schedule: str = "linear"  # diffusers beta schedule of the vp process: linear | scaled_linear | squaredcos_cap_v2
    num_train_timesteps: int = 1000
    loss_weighting: str = "none"  # none | min_snr (Hang et al. 2023; vp only)
    min_snr_gamma: float = 5.0
    flow_logit_normal: bool = True  # flow: draw s from a logit-normal (SD3) rather than uniformly
    sampler: str = "flow-euler"  # default sampler (t2v.diffusion.samplers.SAMPLERS)
    steps: int = 20
    guidance: float = 4.0

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise T2VError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if self.loss_weighting not in WEIGHTINGS:
            raise T2VError(f"loss_weighting must be one of {', '.join(WEIGHTINGS)}, got {self.loss_weighting!r}")

    @property
    def is_flow(self) -> bool:
        return self.prediction == "flow"


def vp_alphas_cumprod(beta_schedule: str, num_train_timesteps: int) -> torch.Tensor:
    """abar_t for t = 0..T-1, from the same betas the ``diffusers`` schedulers use."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule).alphas_cumprod.float()


class DiffusionProcess:
    """Noising, prediction targets, and the conversions between noise levels and predictions."""

    def __init__(self, config: DiffusionConfig) -> None:
        self.config = config
        self.T = config.num_train_timesteps
        self.alphas_cumprod = None if config.is_flow else vp_alphas_cumprod(config.beta_schedule, self.T)

    # -- noise levels ---------------------------------------------------------------------
    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, sigma) of the model's own process at times ``t`` (B,), float."""
        if self.config.is_flow:
            s = (t.float() / self.T).clamp(0, 1)
            return 1 - s, s
        abar = self.abar_at(t)
        return abar.sqrt(), (1 - abar).sqrt()

    def abar_at(self, t: torch.Tensor) -> torch.Tensor:
        """abar at (possibly fractional) t, interpolating sigma = sqrt((1 - abar) / abar) linearly as diffusers does."""
        table = ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt().to(t.device)
        t = t.float().clamp(0, self.T - 1)
        lo = t.floor().long().clamp(max=self.T - 2)
        frac = t - lo
        sigma = table[lo] * (1 - frac) + table[lo + 1] * frac
        return 1 / (1 + sigma**2)

    def time_for_ratio(self, ratio: torch.Tensor) -> torch.Tensor:
        """The model time whose sigma / alpha equals ``ratio`` (B,): the same signal-to-noise ratio."""
        if self.config.is_flow:
            return ratio / (1 + ratio) * self.T
        table = ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt().to(ratio.device)  # increasing in t
        ratio = ratio.clamp(table[0], table[-1])
        hi = torch.searchsorted(table, ratio.contiguous()).clamp(1, self.T - 1)
        lo = hi - 1
        return lo + (ratio - table[lo]) / (table[hi] - table[lo])

    # -- training -------------------------------------------------------------------------
    def sample_times(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.config.is_flow:
            u = torch.randn(batch, generator=generator).sigmoid() if self.config.flow_logit_normal \
                else torch.rand(batch, generator=generator)
            return u * self.T
        return torch.randint(0, self.T, (batch,), generator=generator).float()

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = (expand_like(a, x0) for a in self.alpha_sigma(t))
        return alpha * x0 + sigma * eps

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model learns to predict at (x_t, t)."""
        if self.config.prediction == "eps":
            return eps
        if self.config.prediction == "flow":
            return eps - x0
        alpha, sigma = (expand_like(a, x0) for a in self.alpha_sigma(t))
        return alpha * eps - sigma * x0

    def loss_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weight (B,): min-SNR-gamma expressed for the prediction target, or 1."""
        if self.config.loss_weighting == "none":
            return torch.ones_like(t, dtype=torch.float)
        alpha, sigma = self.alpha_sigma(t)
        snr = (alpha / sigma.clamp_min(1e-8)) ** 2
        clipped = snr.clamp(max=self.config.min_snr_gamma)
        return clipped / snr if self.config.prediction == "eps" else clipped / (snr + 1)

    def training_loss(self, denoise, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Weighted mean squared error of ``denoise(x_t, t)`` against the target; ``x0`` (B, ...)."""
        t = self.sample_times(x0.shape[0], generator).to(x0.device)
        eps = torch.randn(x0.shape, generator=generator).to(x0)
        pred = denoise(self.add_noise(x0, eps, t), t)
        per_sample = (pred.float() - self.target(x0, eps, t)).pow(2).flatten(1).mean(1)
        return (self.loss_weight(t) * per_sample).mean()

    # -- predictions ----------------------------------------------------------------------
    def to_x0_eps(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's output at (x, t) as its implied clean sample and noise."""
        alpha, sigma = (expand_like(a, x) for a in self.alpha_sigma(t))
        if self.config.prediction == "eps":
            return (x - sigma * out) / alpha.clamp_min(1e-4), out
        if self.config.prediction == "v":
            return alpha * x - sigma * out, sigma * x + alpha * out
        return x - sigma * out, x + alpha * out  # flow: x = (1-s) x0 + s eps, out = eps - x0


def expand_like(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, ...) broadcastable against x."""
    return a.to(x).view(-1, *([1] * (x.dim() - 1)))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) times t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
