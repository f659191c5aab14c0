"""3D convolution blocks: strided down/up-sampling stacks and residual blocks over (B, C, T, H, W)."""

from __future__ import annotations

import math

import torch
from torch import nn

from t2v.nn.attention import AxialAttention3d


def downsample_strides(temporal: int, spatial: int) -> list[tuple[int, int, int]]:
    """Per-layer (t, h, w) strides of 1 or 2 that multiply to the requested factors."""
    for factor in (temporal, spatial):
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"downsampling factors must be powers of two, got {factor}")
    nt, ns = int(math.log2(temporal)), int(math.log2(spatial))
    return [(2 if i < nt else 1, 2 if i < ns else 1, 2 if i < ns else 1) for i in range(max(nt, ns))]


def _kernel_and_padding(stride: tuple[int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    # kernel 4 where we stride by 2 (no checkerboard), kernel 3 elsewhere; both keep "same" alignment
    return tuple(4 if s == 2 else 3 for s in stride), tuple(1 for _ in stride)


class ResBlock3d(nn.Module):
    """Norm-act-conv twice with a skip, then optional axial attention (VideoGPT's attention residual block)."""

    def __init__(self, channels: int, *, heads: int = 0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(min(32, channels), channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(min(32, channels), channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
        )
        self.attn = AxialAttention3d(channels, heads) if heads else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x + self.body(x))


class Downsampler3d(nn.Sequential):
    """Strided 3D convs from ``in_ch`` to ``channels[-1]``; one layer per stride in ``strides``."""

    def __init__(self, in_ch: int, channels: list[int], strides: list[tuple[int, int, int]]) -> None:
        layers, prev = [], in_ch
        for i, stride in enumerate(strides):
            ch = channels[min(i, len(channels) - 1)]
            kernel, padding = _kernel_and_padding(stride)
            layers += [nn.Conv3d(prev, ch, kernel, stride=stride, padding=padding), nn.SiLU()]
            prev = ch
        super().__init__(*layers)


class Upsampler3d(nn.Sequential):
    """Transposed 3D convs mirroring ``Downsampler3d`` back to ``out_ch`` channels."""

    def __init__(self, channels: list[int], strides: list[tuple[int, int, int]], out_ch: int) -> None:
        layers = []
        widths = [channels[min(i, len(channels) - 1)] for i in range(len(strides))][::-1]
        for i, stride in enumerate(reversed(strides)):
            kernel, padding = _kernel_and_padding(stride)
            last = i == len(strides) - 1
            nxt = out_ch if last else widths[i + 1]
            conv = (nn.ConvTranspose3d if 2 in stride else nn.Conv3d)(widths[i], nxt, kernel, stride=stride, padding=padding)
            layers += [conv] if last else [conv, nn.SiLU()]
        super().__init__(*layers)
