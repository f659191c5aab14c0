"""Reconstruction and speed metrics: PSNR, SSIM, codebook usage, seconds per video, peak memory."""

from __future__ import annotations

import resource
import statistics
import time

import torch
import torch.nn.functional as F
from einops import rearrange


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-video PSNR in dB of uint8 videos (B, T, H, W, 3)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-video SSIM (Wang et al. 2004, 11x11 Gaussian window) of uint8 videos (B, T, H, W, 3), mean over frames and channels."""
    x = rearrange(a.float() / 255, "b t h w c -> (b t c) 1 h w")
    y = rearrange(b.float() / 255, "b t h w c -> (b t c) 1 h w")
    window = _gaussian_window()
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return rearrange(value.mean((1, 2, 3)), "(b n) -> b n", b=a.shape[0]).mean(1)


def peak_memory_mb(device: torch.device | str = "cpu") -> float:
    """Peak resident memory of this process (CPU) or peak allocated CUDA memory, in MiB."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def median_seconds(fn, *, repeats: int = 10, warmup: int = 2) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
