"""Sampling and DDIM inversion with the ``diffusers`` schedulers, for any denoiser.

A denoiser is a function ``denoise(x, t) -> prediction`` in the process it was trained on
(``DiffusionProcess``). A sampler's scheduler speaks its own process (variance preserving for
DDPM / DDIM / DPM-Solver++ / Euler, rectified flow for the flow samplers); ``SamplerAdapter``
moves each state to the model's time with the same signal-to-noise ratio, rescales it, and turns
the model's prediction into the one the scheduler expects. So a flow-trained model can be sampled
with DDIM and an eps-trained one with flow-Euler, and samplers compare on one model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from t2v.diffusion.process import DiffusionConfig, DiffusionProcess, expand_like
from t2v.errors import T2VError


@dataclass(frozen=True)
class SamplerSpec:
    process: str  # "vp" or "flow": what the scheduler's states and outputs mean
    scheduler: str  # diffusers class name
    options: tuple = ()


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec("vp", "DDPMScheduler", (("timestep_spacing", "trailing"), ("clip_sample", False))),
    "ddim": SamplerSpec("vp", "DDIMScheduler", (("timestep_spacing", "trailing"), ("clip_sample", False),
                                                ("set_alpha_to_one", True))),
    "dpm++": SamplerSpec("vp", "DPMSolverMultistepScheduler", (("algorithm_type", "dpmsolver++"), ("solver_order", 2))),
    "euler": SamplerSpec("vp", "EulerDiscreteScheduler", (("timestep_spacing", "trailing"),)),
    "flow-euler": SamplerSpec("flow", "FlowMatchEulerDiscreteScheduler", ()),
    "flow-heun": SamplerSpec("flow", "FlowMatchHeunDiscreteScheduler", ()),
}
MAX_STEPS = 1000


def check_sampler(name: str, steps: int) -> SamplerSpec:
    if name not in SAMPLERS:
        raise T2VError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    if not 1 <= int(steps) <= MAX_STEPS:
        raise T2VError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    return SAMPLERS[name]


def make_scheduler(name: str, model_config: DiffusionConfig, *, inverse: bool = False):
    """A fresh diffusers scheduler for sampler ``name``; VP samplers share the model's betas when it
    was trained on a VP process (else the config's ``beta_schedule``)."""
    import diffusers

    spec = SAMPLERS[name]
    options = dict(spec.options) | {"num_train_timesteps": model_config.num_train_timesteps}
    if spec.process == "vp":
        options |= {"beta_schedule": model_config.beta_schedule, "prediction_type": "v_prediction"}
    cls = spec.scheduler
    if inverse:
        if name != "ddim":
            raise T2VError(f"inversion is DDIM inversion; got sampler {name!r}")
        cls, options = "DDIMInverseScheduler", {k: v for k, v in options.items() if k != "set_alpha_to_one"}
    return getattr(diffusers, cls)(**options)


class SamplerAdapter:
    """Runs a model trained on ``model_process`` under a scheduler of another parametrisation."""

    def __init__(self, denoise, model_process: DiffusionProcess, sampler_process: str, scheduler) -> None:
        self.denoise, self.model = denoise, model_process
        cfg = model_process.config
        self.flow_sampler = sampler_process == "flow"
        self.sampler = DiffusionProcess(DiffusionConfig(
            prediction="flow" if self.flow_sampler else "v", beta_schedule=cfg.beta_schedule,
            num_train_timesteps=cfg.num_train_timesteps))
        self.scheduler = scheduler

    def output(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """The scheduler's expected model output at its state x, time t."""
        t_s = torch.full((x.shape[0],), float(t), device=x.device)
        scale_input = getattr(self.scheduler, "scale_model_input", None)  # Euler: x / sqrt(sigma^2 + 1)
        x_in = x if scale_input is None else scale_input(x, t)
        alpha_s, sigma_s = self.sampler.alpha_sigma(t_s)
        t_m = self.model.time_for_ratio(sigma_s / alpha_s.clamp_min(1e-12))
        alpha_m, sigma_m = self.model.alpha_sigma(t_m)
        x_m = x_in * expand_like((alpha_m + sigma_m) / (alpha_s + sigma_s), x)  # same SNR, the model's scale
        x0, eps = self.model.to_x0_eps(self.denoise(x_m, t_m), x_m, t_m)
        if self.flow_sampler:
            return eps - x0
        return expand_like(alpha_s, x) * eps - expand_like(sigma_s, x) * x0  # v


def initial_noise(shape: tuple[int, ...], generators: list[torch.Generator] | None, device=None) -> torch.Tensor:
    """Standard normal noise (B, ...), sample i from generator i, so results do not depend on batching."""
    if generators is None:
        return torch.randn(shape, device=device)
    if len(generators) != shape[0]:
        raise T2VError(f"{len(generators)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(shape[1:], generator=g) for g in generators]).to(device)


@torch.no_grad()
def sample(denoise, process: DiffusionProcess, noise: torch.Tensor, *, sampler: str = "flow-euler", steps: int = 20,
           generators: list[torch.Generator] | None = None, progress: bool = False,
           callback=None) -> torch.Tensor:
    """Integrate from ``noise`` (B, ...) standard normal to a clean sample with ``steps`` scheduler steps.

    ``callback(x, t)`` may replace the state after each step (e.g. to impose known frames).
    """
    spec = check_sampler(sampler, steps)
    scheduler = make_scheduler(sampler, process.config)
    scheduler.set_timesteps(int(steps), device=noise.device)
    adapter = SamplerAdapter(denoise, process, spec.process, scheduler)
    x = noise * getattr(scheduler, "init_noise_sigma", 1.0)
    step_kwargs = {"generator": generators[0] if generators and len(generators) == 1 else generators} \
        if sampler == "ddpm" else {}
    for t in tqdm(scheduler.timesteps, desc=sampler, disable=not progress, leave=False):
        x = scheduler.step(adapter.output(x, t), t, x, **step_kwargs).prev_sample
        if callback is not None:
            x = callback(x, t)
    return x


@torch.no_grad()
def ddim_invert(denoise, process: DiffusionProcess, x0: torch.Tensor, *, steps: int = 50) -> torch.Tensor:
    """DDIM inversion: run the deterministic DDIM update backwards from a clean ``x0`` to the noise
    that ``sample(..., sampler="ddim", steps=steps)`` maps (approximately) back to it."""
    check_sampler("ddim", steps)
    scheduler = make_scheduler("ddim", process.config, inverse=True)
    scheduler.set_timesteps(int(steps), device=x0.device)
    adapter = SamplerAdapter(denoise, process, "vp", scheduler)
    x = x0
    for t in scheduler.timesteps:
        x = scheduler.step(adapter.output(x, t), t, x).prev_sample
    return x


def classifier_free_guidance(denoise_pair, scale: float):
    """Classifier-free guidance: ``denoise_pair(x2, t2)`` gets the batch twice (conditional rows first,
    then unconditional) and returns both predictions; the result extrapolates by ``scale``."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return denoise_pair(x, t, guided=False)
        cond, uncond = denoise_pair(torch.cat([x, x]), torch.cat([t, t]), guided=True).chunk(2)
        return uncond + scale * (cond - uncond)

    return denoise
