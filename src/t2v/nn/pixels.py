"""Conversions between uint8 frames (B, T, H, W, 3) and model tensors (B, 3, T, H, W) in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def frames_to_tensor(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    frames = torch.as_tensor(frames)
    return rearrange(frames.float() / 127.5 - 1.0, "b t h w c -> b c t h w").contiguous()


def tensor_to_frames(video: torch.Tensor) -> torch.Tensor:
    """float (B, 3, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, 3) on the CPU."""
    video = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(video, "b c t h w -> b t h w c").cpu().contiguous()
