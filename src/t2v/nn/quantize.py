"""Vector quantisation with an EMA codebook and dead-code restarts (VQ-VAE-2 / VideoGPT)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass
class Quantized:
    z_q: torch.Tensor  # straight-through quantised vectors, same shape as the input
    codes: torch.Tensor  # (...,) long indices
    commitment_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # scalar: exp(entropy of code usage in the batch)


class EMAVectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup; the codebook follows an EMA of its assigned vectors.

    Codes whose EMA usage falls below ``dead_threshold`` are restarted at random encoder
    outputs of the current batch, so the whole codebook stays in use.
    """

    def __init__(self, num_codes: int, dim: int, *, decay: float = 0.99, commitment: float = 0.25,
                 dead_threshold: float = 1.0, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.commitment = num_codes, dim, decay, commitment
        self.dead_threshold, self.eps = dead_threshold, eps
        self.register_buffer("codebook", torch.randn(num_codes, dim))
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.tensor(False))

    def nearest_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the closest codebook vector."""
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        return distances.argmin(1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(...,) codes -> (..., D) vectors."""
        return F.embedding(codes, self.codebook)

    def forward(self, z: torch.Tensor) -> Quantized:
        """z: (..., D) encoder outputs."""
        flat = rearrange(z, "... d -> (...) d").float()
        if self.training and not bool(self.initialised):
            self._restart(flat, torch.ones(self.num_codes, dtype=torch.bool, device=z.device))
            self.initialised.fill_(True)
        codes = self.nearest_codes(flat)  # (N,)
        onehot = F.one_hot(codes, self.num_codes).type(flat.dtype)  # (N, K)
        if self.training:
            self._ema_update(flat, onehot)
        z_q = self.lookup(codes).view_as(z).type(z.dtype)
        usage = onehot.mean(0)
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        commitment = self.commitment * F.mse_loss(z, z_q.detach())
        z_q = z + (z_q - z).detach()  # straight-through estimator
        return Quantized(z_q, codes.view(z.shape[:-1]), commitment, perplexity)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor) -> None:
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        self._restart(flat, self.cluster_size < self.dead_threshold)

    @torch.no_grad()
    def _restart(self, flat: torch.Tensor, dead: torch.Tensor) -> None:
        """Move dead codes onto randomly chosen encoder outputs (drawn from torch's RNG)."""
        num_dead = int(dead.sum())
        if num_dead == 0:
            return
        picks = flat[torch.randint(0, flat.shape[0], (num_dead,), device=flat.device)]
        self.codebook[dead] = picks
        self.embed_sum[dead] = picks
        self.cluster_size[dead] = 1.0

    def near_codes(self, codes: torch.Tensor, share: float, nearest: int = 4) -> torch.Tensor:
        """``codes`` with a random ``share`` of them each swapped for one of the ``nearest`` other codebook
        vectors closest to it (drawn from torch's RNG): slightly wrong codes, as a prior samples them."""
        flat = codes.flatten()
        swap = torch.rand(flat.shape, device=flat.device) < share
        picked = flat[swap]
        if picked.numel():
            neighbours = torch.cdist(self.codebook[picked], self.codebook).topk(nearest + 1, largest=False).indices
            choice = torch.randint(1, nearest + 1, (picked.numel(), 1), device=flat.device)  # 0 is the code itself
            flat = flat.clone()
            flat[swap] = neighbours.gather(1, choice).squeeze(1)
        return flat.view_as(codes)

    def usage(self, codes: torch.Tensor) -> float:
        """Share of the codebook used by a batch of codes."""
        return torch.unique(codes).numel() / self.num_codes
