"""What the two stages of latent families share. Stage 1, a video autoencoder (VQ tokenizer or
VAE): reconstruction and preview, and for VQ tokenizers their loss. Stage 2, a prior over its
codes: building it on a trained tokenizer checkpoint, and keeping that tokenizer frozen and in eval mode."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2v.checkpoint import load_model, read_config, read_training_stages
from t2v.nn.pixels import frames_to_tensor, tensor_to_frames
from t2v.nn.quantize import Quantized


def reconstruction_loss(recon: torch.Tensor, video: torch.Tensor, *, l1_weight: float = 0.0,
                        edge_weight: float = 0.0, chroma_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """MSE plus ``l1_weight`` x L1 (VQGAN's reconstruction term: the L1 optimum is a median, so an
    uncertain pixel keeps one of its candidate colours instead of their blend) plus ``edge_weight`` x
    the gradient difference loss (Mathieu et al. 2016: how far the sizes of the horizontal and vertical
    pixel steps differ, which a blurred edge pays for) plus ``chroma_weight`` x the hue error of lit
    pixels (see ``chroma_difference``), and the PSNR."""
    mse = F.mse_loss(recon, video)
    psnr = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10))  # range [-1, 1] has peak-to-peak 2
    loss, stats = mse, {"mse": mse.item(), "psnr": psnr.item()}
    if l1_weight:
        l1 = F.l1_loss(recon, video)
        loss, stats = loss + l1_weight * l1, {**stats, "l1": l1.item()}
    if edge_weight:
        edge = gradient_difference(recon, video)
        loss, stats = loss + edge_weight * edge, {**stats, "edge": edge.item()}
    if chroma_weight:
        chroma = chroma_difference(recon, video)
        loss, stats = loss + chroma_weight * chroma, {**stats, "chroma": chroma.item()}
    return loss, stats


def chroma_difference(recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Hue error of (B, 3, T, H, W) videos in [-1, 1]: the squared distance between the unit RGB
    directions of each pixel and its reconstruction, averaged with the target's brightness as weight.

    MSE averages over every pixel, so a small object's colour is a few hundredths of it, and two near
    hues (orange and yellow are 0.98 alike in direction) cost it almost nothing; here each lit pixel
    counts alike and black (no hue) not at all."""
    target, output = (video + 1) / 2, (recon + 1) / 2  # (B, 3, T, H, W) in [0, 1]
    weight = target.amax(1)  # (B, T, H, W) brightness
    # |x| clamped at 1e-3, from a channel sum: with linalg.vector_norm over dim 1 this loss took 10x as long on CPU
    direction = lambda x: x / x.pow(2).sum(1, keepdim=True).clamp_min(1e-6).sqrt()  # noqa: E731
    error = (direction(output) - direction(target)).pow(2).sum(1)  # (B, T, H, W)
    return (weight * error).sum() / weight.sum().clamp_min(1e-6)


def gradient_difference(recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Mean | |grad recon| - |grad video| | over the width and height steps of (B, C, T, H, W) videos."""
    return sum(F.l1_loss(recon.diff(dim=d).abs(), video.diff(dim=d).abs()) for d in (-1, -2)) / 2


class VideoAutoencoder(nn.Module):
    """Subclasses define ``reconstruct_tensor``: (B, 3, T, H, W) in [-1, 1] -> its reconstruction, and
    ``encoding_parts``: the submodules on the way from pixels to codes or latents (with the codebook)."""

    encoding_parts: tuple[str, ...] = ("encoder",)
    encoding_frozen: bool = False

    def freeze_encoding(self) -> None:
        """Decoder-only fine-tuning: the encoding parts keep their weights and stay in eval mode (an EMA
        codebook neither moves nor restarts codes), so every video keeps its codes or latents and a
        prior trained on them stays valid; only the decoder learns."""
        for name in self.encoding_parts:
            getattr(self, name).requires_grad_(False)
        self.encoding_frozen = True
        self.train(self.training)

    def configured_reconstruction_loss(self, recon: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """``reconstruction_loss`` with the L1, edge and hue weights of this model's config."""
        config = self.config
        return reconstruction_loss(recon, video, l1_weight=config.l1_weight, edge_weight=config.edge_weight,
                                   chroma_weight=config.chroma_weight)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoding_frozen:
            for name in self.encoding_parts:
                getattr(self, name).eval()
        return self

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> reconstructed uint8 frames of the same shape."""
        return tensor_to_frames(self.reconstruct_tensor(frames_to_tensor(frames)))

    def preview(self, batch: dict) -> torch.Tensor:
        """Each video of a batch above its reconstruction (the trainer's sample grid): (2B, T, H, W, 3)."""
        frames = torch.as_tensor(batch["video"])
        pairs = torch.stack([frames, self.reconstruct(frames)], dim=1)  # (B, 2, T, H, W, 3)
        return rearrange(pairs, "b two t h w c -> (b two) t h w c")


class VQVideoTokenizer(VideoAutoencoder):
    """Subclasses define ``encode`` (video -> codes), ``decode`` (codes -> video in [-1, 1]) and
    ``forward`` (video -> (reconstruction, Quantized)) on (B, 3, T, H, W) tensors."""

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        video = frames_to_tensor(batch["video"])  # (B, 3, T, H, W)
        recon, q = self(video)
        loss, stats = self.configured_reconstruction_loss(recon, video)
        return loss + q.commitment_loss, {**stats, "perplexity": q.perplexity.item()}

    def reconstruct_tensor(self, video: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(video))

    def decoder_input(self, q: Quantized) -> torch.Tensor:
        """The quantised vectors (..., D) the decoder reads in training: with ``config.code_noise``, a share of
        positions carry a near but wrong code, so the decoder learns to draw the clean video from codes a
        prior got slightly wrong (no gradient reaches the encoder through those positions)."""
        share = self.config.code_noise
        if not (self.training and share):
            return q.z_q
        noisy = self.quantizer.near_codes(q.codes, share)
        return torch.where((noisy != q.codes)[..., None], self.quantizer.lookup(noisy).type(q.z_q.dtype), q.z_q)


class TokenizerPrior(nn.Module):
    """Subclasses set ``tokenizer_class`` and ``tokenizer_field`` (the config field holding its config)."""

    tokenizer_class: type
    tokenizer_field: str

    @classmethod
    def for_training(cls, config):
        """A fresh model on top of the trained tokenizer named by ``config.tokenizer``: a stage-1
        checkpoint, or a trained model of this family (a bundled one, say), whose tokenizer is reused."""
        tokenizer, stages = cls.trained_tokenizer(config.tokenizer)
        model = cls(replace(config, **{cls.tokenizer_field: tokenizer.config}))
        model.tokenizer.load_state_dict(tokenizer.state_dict())
        model.earlier_stages = stages  # how stage 1 was trained, for the card
        return model

    @classmethod
    def trained_tokenizer(cls, directory: str) -> tuple[nn.Module, list[dict]]:
        """The tokenizer of a stage-1 checkpoint or of a stage-2 checkpoint of this family, and how it was trained."""
        stage1 = cls.tokenizer_class.family
        if read_config(directory)["family"] == cls.family:
            tokenizer = load_model(directory, family=cls.family).tokenizer
        else:
            tokenizer = load_model(directory, family=stage1)
        return tokenizer, [s for s in read_training_stages(directory) if s.get("family") == stage1]

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen stage 1: its EMA codebook must not move
        return self

    def stage1_codes(self, batch: dict, device: torch.device) -> torch.Tensor:
        """The stage-1 codes (or latents) of a batch: cached by ``t2v data encode`` ("latents"), or
        encoded now from "video", in float32 exactly as sampling decodes them."""
        if "latents" in batch:
            return torch.as_tensor(batch["latents"]).to(device)
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            return self.tokenizer.encode(frames_to_tensor(batch["video"]).to(device))
