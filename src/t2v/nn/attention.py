"""Attention blocks shared by every family: self (optionally causal, with a KV cache),
cross-attention to text, axial attention over video grids, and a pre-norm transformer block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2v.nn.rope import apply_rotary


class KVCache:
    """Keys and values of past positions, one entry per attention layer, for incremental decoding.

    Buffers are allocated once for ``capacity`` positions and filled in place: growing them
    with ``torch.cat`` at every step costs more than the attention itself on a CPU.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buffers: dict[int, torch.Tensor] = {}  # layer -> (2, B, h, capacity, d)
        self.lengths: dict[int, int] = {}
        self.context: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # cross-attention K/V, computed once

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, h, n, d) after this layer's past; return all keys and values so far."""
        if layer not in self.buffers:
            b, h, _, d = k.shape
            self.buffers[layer] = k.new_empty(2, b, h, self.capacity, d)
            self.lengths[layer] = 0
        start, end = self.lengths[layer], self.lengths[layer] + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache holds {self.capacity} positions, asked for {end}")
        buffer = self.buffers[layer]
        buffer[0, :, :, start:end], buffer[1, :, :, start:end] = k, v
        self.lengths[layer] = end
        return buffer[0, :, :, :end], buffer[1, :, :, :end]

    def past(self, layer: int) -> int:
        return self.lengths.get(layer, 0)


class SelfAttention(nn.Module):
    """Multi-head self-attention over (B, N, D); ``causal`` masks the future."""

    def __init__(self, dim: int, heads: int, *, causal: bool = False) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, *, cache: KVCache | None = None, layer: int = 0,
                attn_mask: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``rotary``: (cos, sin) of shape (N, head_dim / 2) rotating queries and keys (``t2v.nn.rope``)."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, h, past + N, d)
        if self.causal and attn_mask is None and q.shape[2] > 1:
            # queries at absolute positions past..past+N-1 see keys up to their own position
            n, m = q.shape[2], k.shape[2]
            attn_mask = torch.ones(n, m, dtype=torch.bool, device=x.device).tril(diagonal=m - n)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Queries from x (B, N, D) attend to a context (B, L, Dc) with a padding mask (B, L)."""

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None, *,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        if cache is not None and layer in cache.context:
            k, v = cache.context[layer]
        else:
            k, v = rearrange(self.kv(context), "b l (two h d) -> two b h l d", two=2, h=self.heads)
            if cache is not None:
                cache.context[layer] = (k, v)
        attn_mask = None if mask is None else rearrange(mask, "b l -> b 1 1 l")
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class AxialAttention3d(nn.Module):
    """VideoGPT's axial attention: attend along time, height and width separately, then sum.

    Input and output (B, C, T, H, W); a learned per-axis position embedding is not needed
    because the surrounding convolutions already encode position.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(32, dim), dim)
        self.attn = nn.ModuleList([SelfAttention(dim, heads) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = rearrange(self.norm(x), "b c t h w -> b t h w c")
        along_t = rearrange(self.attn[0](rearrange(y, "b t h w c -> (b h w) t c")), "(b h w) t c -> b t h w c", b=b, h=h, w=w)
        along_h = rearrange(self.attn[1](rearrange(y, "b t h w c -> (b t w) h c")), "(b t w) h c -> b t h w c", b=b, t=t, w=w)
        along_w = rearrange(self.attn[2](rearrange(y, "b t h w c -> (b t h) w c")), "(b t h) w c -> b t h w c", b=b, t=t, h=h)
        return x + rearrange(along_t + along_h + along_w, "b t h w c -> b c t h w")


class FeedForward(nn.Sequential):
    """Position-wise MLP with GELU."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__(nn.Linear(dim, mult * dim), nn.GELU(approximate="tanh"), nn.Linear(mult * dim, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to text, MLP."""

    def __init__(self, dim: int, heads: int, *, context_dim: int | None = None, causal: bool = False,
                 mlp_mult: int = 4) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads, causal=causal)
        self.cross = None
        if context_dim is not None:
            self.norm2, self.cross = nn.LayerNorm(dim), CrossAttention(dim, context_dim, heads)
        self.norm3, self.mlp = nn.LayerNorm(dim), FeedForward(dim, mlp_mult)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                *, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache=cache, layer=layer)
        if self.cross is not None:
            x = x + self.cross(self.norm2(x), context, context_mask, cache=cache, layer=layer)
        return x + self.mlp(self.norm3(x))


def init_transformer_weights(module: nn.Module) -> None:
    """GPT-2 style: N(0, 0.02) for linear and embedding weights, zero biases (use with ``model.apply``)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
