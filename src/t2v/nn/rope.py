"""Rotary position embedding over a (t, h, w) grid: the head dimension is split between the three
axes and each part rotates by its own integer position. Relative by construction, so a model
trained on some grid sizes runs on other sizes and durations."""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Even shares of the head dimension for (t, h, w): about a quarter for time, the rest split."""
    dt = max(2, head_dim // 4 // 2 * 2)
    dh = (head_dim - dt) // 2 // 2 * 2
    return dt, dh, head_dim - dt - dh


def axis_angles(positions: torch.Tensor, dim: int, base: float = 100.0) -> torch.Tensor:
    """positions (N,) -> angles (N, dim / 2)."""
    freqs = base ** (-torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim)
    return positions.float()[:, None] * freqs[None]


def rope_3d(t: int, h: int, w: int, head_dim: int, *, t_offset: int = 0,
            device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (N, head_dim / 2) for the grid positions in raster (t, h, w) order."""
    grid = torch.stack(torch.meshgrid(torch.arange(t, device=device) + t_offset, torch.arange(h, device=device),
                                      torch.arange(w, device=device), indexing="ij"), dim=-1).reshape(-1, 3)
    angles = torch.cat([axis_angles(grid[:, i], d) for i, d in enumerate(axis_dims(head_dim))], dim=-1)
    return angles.cos(), angles.sin()


def no_rotation(n: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin that leave n positions unrotated (tokens without a grid position)."""
    return torch.ones(n, head_dim // 2, device=device), torch.zeros(n, head_dim // 2, device=device)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of x (B, heads, N, head_dim) by the angles of cos, sin (N, head_dim / 2)."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (B, h, N, d/2) each
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    return out.to(x.dtype)
