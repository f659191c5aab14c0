"""VideoGPT (Yan et al., 2021): a 3D-conv VQ-VAE with axial-attention residual blocks, and a
GPT prior over its flattened code grid, conditioned on text through cross-attention.

Stage 1 (``VQVAE``) compresses a video (B, 3, T, H, W) to codes (B, t, h, w).
Stage 2 (``VideoGPT``) predicts those codes left to right; the VQ-VAE decoder turns them into frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2v.models.stages import TokenizerPrior, VQVideoTokenizer
from t2v.nn.attention import KVCache, TransformerBlock, init_transformer_weights
from t2v.nn.conv3d import Downsampler3d, ResBlock3d, Upsampler3d, downsample_strides
from t2v.nn.pixels import tensor_to_frames
from t2v.nn.quantize import EMAVectorQuantizer
from t2v.nn.sampling import sample_logits
from t2v.nn.text_condition import TextConditioner
from t2v.nn.threads import single_thread_for_small_batches
from t2v.text import TextEncoderConfig


# ----------------------------------------------------------------------------- stage 1: VQ-VAE
@dataclass
class VQVAEConfig:
    """Video VQ-VAE sizes; the code grid is (T / temporal_downsample, H / spatial_downsample, W / ...)."""

    channels: list[int] = field(default_factory=lambda: [64, 128, 128])  # width after each strided conv
    num_res_blocks: int = 2
    attn_heads: int = 4  # 0 disables the axial attention in residual blocks
    temporal_downsample: int = 4
    spatial_downsample: int = 8
    codebook_size: int = 512
    code_dim: int = 64
    commitment: float = 0.25
    ema_decay: float = 0.99
    l1_weight: float = 0.0  # weight of an L1 term beside the MSE (VQGAN's reconstruction loss)
    edge_weight: float = 0.0  # weight of the gradient difference loss (sharper edges; see reconstruction_loss)
    chroma_weight: float = 0.0  # weight of the hue error of lit pixels (small objects' colours; see chroma_difference)
    code_noise: float = 0.0  # share of codes swapped for near ones in training (see VQVideoTokenizer.decoder_input)
    num_frames: int = 16
    height: int = 64
    width: int = 64

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.num_frames // self.temporal_downsample, self.height // self.spatial_downsample,
                self.width // self.spatial_downsample)


class VQVAE(VQVideoTokenizer):
    """Strided 3D-conv encoder, attention residual blocks, EMA codebook, mirrored decoder."""

    family = "videogpt-vqvae"
    config_class = VQVAEConfig
    encoding_parts = ("encoder", "quantizer")
    presets: dict = {}  # filled at the end of the file

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        strides = downsample_strides(config.temporal_downsample, config.spatial_downsample)
        width = config.channels[min(len(strides), len(config.channels)) - 1]
        res = lambda: [ResBlock3d(width, heads=config.attn_heads) for _ in range(config.num_res_blocks)]  # noqa: E731
        self.encoder = nn.Sequential(Downsampler3d(3, config.channels, strides), *res(),
                                     nn.GroupNorm(min(32, width), width), nn.SiLU(), nn.Conv3d(width, config.code_dim, 1))
        self.quantizer = EMAVectorQuantizer(config.codebook_size, config.code_dim, decay=config.ema_decay,
                                            commitment=config.commitment)
        self.decoder = nn.Sequential(nn.Conv3d(config.code_dim, width, 3, padding=1), *res(),
                                     nn.GroupNorm(min(32, width), width), nn.SiLU(),
                                     Upsampler3d(config.channels, strides, 3))

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> codes (B, t, h, w)."""
        z = rearrange(self.encoder(video), "b d t h w -> b t h w d")
        return self.quantizer.nearest_codes(rearrange(z, "b t h w d -> (b t h w) d")).view(z.shape[:-1])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, t, h, w) -> (B, 3, T, H, W) in [-1, 1]."""
        z_q = rearrange(self.quantizer.lookup(codes), "b t h w d -> b d t h w")
        return self.decoder(z_q).clamp(-1, 1)

    def forward(self, video: torch.Tensor):
        z = rearrange(self.encoder(video), "b d t h w -> b t h w d")  # (B, t, h, w, D)
        q = self.quantizer(z)
        recon = self.decoder(rearrange(self.decoder_input(q), "b t h w d -> b d t h w"))  # (B, 3, T, H, W)
        return recon, q


# ----------------------------------------------------------------------------- stage 2: GPT prior
@dataclass
class VideoGPTConfig:
    """The prior over codes; ``tokenizer`` is the stage-1 checkpoint directory used in training."""

    tokenizer: str = "runs/videogpt-vqvae/model"
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    dim: int = 256
    layers: int = 6
    heads: int = 8
    text_dropout: float = 0.1  # share of captions replaced by the null text, for classifier-free guidance
    guidance: float = 3.0  # default guidance scale at sampling
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)  # filled from the tokenizer checkpoint


class VideoGPT(TokenizerPrior):
    """Decoder-only transformer over flattened (t, h, w) codes with text cross-attention."""

    family = "videogpt"
    config_class = VideoGPTConfig
    presets: dict = {}  # filled at the end of the file
    tokenizer_class, tokenizer_field = VQVAE, "vqvae"
    sampling_options = ("guidance", "temperature", "top_k", "top_p", "use_cache")

    def __init__(self, config: VideoGPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = VQVAE(config.vqvae).requires_grad_(False).eval()
        self.text = TextConditioner(config.text, config.dim)
        t, h, w = self.latent_shape = config.vqvae.latent_shape
        k, d = config.vqvae.codebook_size, config.dim
        self.code_embed = nn.Embedding(k, d)
        self.pos_t, self.pos_h, self.pos_w = (nn.Parameter(torch.randn(n, d) * 0.02) for n in (t, h, w))
        self.bos = nn.Parameter(torch.zeros(d))
        self.blocks = nn.ModuleList(TransformerBlock(d, config.heads, context_dim=d, causal=True) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, k)
        self.apply(init_transformer_weights)

    @property
    def num_tokens(self) -> int:
        t, h, w = self.latent_shape
        return t * h * w

    def positions(self) -> torch.Tensor:
        """Factorised 3D position embedding, flattened in raster order: (N, D)."""
        pos = self.pos_t[:, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        return rearrange(pos, "t h w d -> (t h w) d")

    def condition(self, prompts: list[str], drop: torch.Tensor | None = None):
        """Text context (B, L, D), mask (B, L) and BOS vector (B, 1, D); ``drop`` rows get the null text."""
        context, mask, pooled = self.text(prompts, drop)
        return context, mask, (self.bos + pooled)[:, None]

    def transformer(self, x: torch.Tensor, context, mask, cache: KVCache | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, context, mask, cache=cache, layer=i)
        return self.head(self.norm(x))  # (B, n, K)

    def forward(self, codes: torch.Tensor, prompts: list[str], drop: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits for codes (B, t, h, w): (B, N, K)."""
        context, mask, bos = self.condition(prompts, drop)
        tokens = rearrange(codes, "b t h w -> b (t h w)")
        x = torch.cat([bos, self.code_embed(tokens[:, :-1])], dim=1) + self.positions()  # (B, N, D)
        return self.transformer(x, context, mask)

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        device = self.head.weight.device
        codes = self.stage1_codes(batch, device)  # (B, t, h, w)
        drop = torch.rand(codes.shape[0], device=codes.device) < self.config.text_dropout
        logits = self(codes, batch["caption"], drop)
        loss = F.cross_entropy(rearrange(logits, "b n k -> (b n) k"), codes.flatten())
        return loss, {"ce": loss.item()}

    @torch.inference_mode()
    def generate_codes(self, prompts: list[str], *, generators: list[torch.Generator] | None = None, guidance: float | None = None,
                       temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                       use_cache: bool = True) -> torch.Tensor:
        """Sample codes (B, t, h, w) token by token; classifier-free guidance when guidance != 1."""
        cfg = self.config
        guidance = cfg.guidance if guidance is None else guidance
        b, guided = len(prompts), guidance != 1.0
        drop = TextConditioner.guidance_drop(b, guided, self.head.weight.device)
        context, mask, bos = self.condition(prompts * (2 if guided else 1), drop)
        pos = self.positions()
        cache = KVCache(self.num_tokens) if use_cache else None
        seq = bos + pos[0]  # (B', 1, D) inputs so far (only the newest with a cache); input i carries position i
        tokens = []
        with single_thread_for_small_batches(seq.shape[0]):
            for i in range(self.num_tokens):
                logits = self.transformer(seq, context, mask, cache)[:, -1]  # (B', K)
                if guided:
                    cond, uncond = logits.chunk(2)
                    logits = uncond + guidance * (cond - uncond)
                tok = sample_logits(logits, generators=generators, temperature=cfg.temperature if temperature is None else temperature,
                                    top_k=cfg.top_k if top_k is None else top_k, top_p=cfg.top_p if top_p is None else top_p)  # (B,)
                tokens.append(tok)
                if i + 1 < self.num_tokens:
                    nxt = (self.code_embed(tok.repeat(2 if guided else 1)) + pos[i + 1])[:, None]  # (B', 1, D)
                    seq = nxt if use_cache else torch.cat([seq, nxt], dim=1)
        t, h, w = self.latent_shape
        return rearrange(torch.stack(tokens, 1), "b (t h w) -> b t h w", t=t, h=h, w=w)

    @torch.inference_mode()
    def generate(self, prompts: list[str], *, generators: list[torch.Generator] | None = None, **options) -> torch.Tensor:
        """Prompts -> uint8 frames (B, T, H, W, 3)."""
        return tensor_to_frames(self.tokenizer.decode(self.generate_codes(prompts, generators=generators, **options)))

    @property
    def video_shape(self) -> tuple[int, int, int]:
        return self.config.vqvae.num_frames, self.config.vqvae.height, self.config.vqvae.width

    def preview(self, batch: dict) -> torch.Tensor:
        """Samples for the captions of a batch (the trainer's sample grid)."""
        return self.generate(batch["caption"])


# ----------------------------------------------------------------------------- size presets
VQVAE.presets = {
    "tiny": dict(channels=[16, 32], num_res_blocks=1, attn_heads=2, codebook_size=64, code_dim=16),
    "shapes": dict(),
}
VideoGPT.presets = {
    "tiny": dict(dim=32, layers=2, heads=2),
    "S": dict(dim=256, layers=6, heads=8),
    "B": dict(dim=512, layers=12, heads=8),
}
