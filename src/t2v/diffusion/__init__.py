"""Diffusion core shared by the diffusion families: the noising process and its training loss
(``process``), and sampling / DDIM inversion with the diffusers schedulers (``samplers``).
No model code lives here: a denoiser is any function ``(x, t) -> prediction``."""

from t2v.diffusion.process import DiffusionConfig, DiffusionProcess, timestep_embedding
from t2v.diffusion.samplers import SAMPLERS, classifier_free_guidance, ddim_invert, initial_noise, sample

__all__ = ["DiffusionConfig", "DiffusionProcess", "SAMPLERS", "classifier_free_guidance", "ddim_invert", "initial_noise", "sample",
           "timestep_embedding"]
