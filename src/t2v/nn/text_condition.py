"""Text conditioning shared by the token priors: encoder states projected to the model width, a
pooled vector, and a learned "null text" that replaces dropped captions for classifier-free guidance."""

from __future__ import annotations

import torch
from torch import nn

from t2v.text import TextEncoderConfig, build_text_encoder


class TextConditioner(nn.Module):
    """Prompts -> context (B, L, D), padding mask (B, L), pooled (B, D)."""

    def __init__(self, config: TextEncoderConfig, dim: int) -> None:
        super().__init__()
        self.encoder = build_text_encoder(config)
        self.proj = nn.Linear(self.encoder.dim, dim)
        self.pooled_proj = nn.Linear(self.encoder.dim, dim)
        self.null = nn.Parameter(torch.randn(1, dim) * 0.02)

    def forward(self, prompts: list[str], drop: torch.Tensor | None = None):
        """``drop`` (B,) bool rows get the null text: one learned token, and a zero pooled vector."""
        text = self.encoder(prompts)
        device = self.proj.weight.device
        context, mask = self.proj(text.states.to(device)), text.mask.to(device)
        pooled = self.pooled_proj(text.pooled.to(device))
        if drop is not None and drop.any():
            context = torch.where(drop[:, None, None], self.null.expand(context.shape[1], -1)[None], context)
            first_only = torch.zeros_like(mask)
            first_only[:, 0] = True
            mask = torch.where(drop[:, None], first_only, mask)
            pooled = torch.where(drop[:, None], torch.zeros_like(pooled), pooled)
        return context, mask, pooled

    @staticmethod
    def guidance_drop(batch: int, guided: bool, device) -> torch.Tensor:
        """The drop mask for sampling: the prompts once, then (when guided) once more as null text."""
        return torch.tensor([False] * batch + [True] * batch if guided else [False] * batch, device=device)

