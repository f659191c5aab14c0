"""Drawing a token from logits: temperature, top-k and top-p (nucleus), reproducible with a generator."""

from __future__ import annotations

import torch


def uniform_per_row(generators: list[torch.Generator] | None, batch: int, device, size: tuple[int, ...] = ()) -> torch.Tensor:
    """(B, *size) uniforms, row i drawn from ``generators[i]`` so a row's result does not depend on its batch."""
    if generators is None:
        return torch.rand(batch, *size, device=device)
    if len(generators) != batch:
        raise ValueError(f"need one generator per row: {len(generators)} for {batch} rows")
    return torch.stack([torch.rand(size, generator=g) for g in generators]).to(device)


def sample_logits(logits: torch.Tensor, *, generators: list[torch.Generator] | None = None, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(B, ..., K) logits -> (B, ...) token ids by inverse-CDF sampling; temperature 0 means greedy."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(remove, float("-inf")))
    cdf = logits.softmax(-1).cumsum(-1)  # (B, ..., K)
    u = uniform_per_row(generators, logits.shape[0], logits.device, tuple(logits.shape[1:-1]))[..., None] * cdf[..., -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp(max=logits.shape[-1] - 1)
