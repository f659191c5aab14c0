"""Phenaki (Villegas et al. 2022): a causal video tokenizer (C-ViViT) and a MaskGIT transformer
that fills its token grid in a few parallel steps; stories follow a sequence of prompts.

Stage 1, ``CViViT``: the first frame is cut into image patches, the other frames into
spatio-temporal tubelets of ``temporal_patch`` frames; a spatial transformer mixes the patches
of each time slot, then a *causal* temporal transformer lets each slot see only itself and the
past; a vector quantiser turns every position into a code. The decoder mirrors it. Being
causal, it encodes and decodes ``1 + k * temporal_patch`` frames for any ``k``, a single image
being a one-frame video, and the codes of a clip's first slots do not depend on what follows.

Stage 2, ``Phenaki``: a bidirectional transformer over the code grid, text through
cross-attention, trained to recover randomly masked codes (cosine schedule). Sampling starts
from an all-masked grid (or a given prefix: a first frame, or the last frames of a story so
far) and in each of N steps keeps the most confident predictions (MaskGIT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2v.errors import T2VError
from t2v.models.stages import TokenizerPrior, VQVideoTokenizer
from t2v.nn.attention import TransformerBlock, init_transformer_weights
from t2v.nn.pixels import frames_to_tensor, tensor_to_frames
from t2v.nn.quantize import EMAVectorQuantizer
from t2v.nn.sampling import sample_logits, uniform_per_row
from t2v.nn.text_condition import TextConditioner
from t2v.text import TextEncoderConfig

MIN_STEPS, MAX_STEPS = 1, 64


# ----------------------------------------------------------------------------- stage 1: C-ViViT
@dataclass
class CViViTConfig:
    """Patch sizes, transformer sizes and the codebook; ``num_frames/height/width`` is the training clip."""

    dim: int = 256
    heads: int = 4
    spatial_layers: int = 2
    temporal_layers: int = 2
    patch_size: int = 8  # pixels per patch side
    temporal_patch: int = 5  # frames per tubelet after the first frame (16 = 1 + 3 * 5)
    codebook_size: int = 1024
    code_dim: int = 32
    commitment: float = 0.25
    ema_decay: float = 0.99
    l1_weight: float = 0.0  # weight of an L1 term beside the MSE (VQGAN's reconstruction loss)
    edge_weight: float = 0.0  # weight of the gradient difference loss (sharper edges; see reconstruction_loss)
    chroma_weight: float = 0.0  # weight of the hue error of lit pixels (small objects' colours; see chroma_difference)
    code_noise: float = 0.0  # share of codes swapped for near ones in training (see VQVideoTokenizer.decoder_input)
    max_slots: int = 32  # time slots the position embedding covers: up to 1 + 31 * temporal_patch frames
    refine_channels: int = 0  # width of the per-frame conv refiner on the decoded pixels (0: none; see PixelRefiner)
    num_frames: int = 16
    height: int = 64
    width: int = 64

    def slots(self, num_frames: int) -> int:
        """Time slots of a clip: the first frame, then one per tubelet."""
        if num_frames < 1 or (num_frames - 1) % self.temporal_patch:
            raise T2VError(f"C-ViViT encodes 1 + k*{self.temporal_patch} frames, got {num_frames}")
        slots = 1 + (num_frames - 1) // self.temporal_patch
        if slots > self.max_slots:
            raise T2VError(f"at most {1 + (self.max_slots - 1) * self.temporal_patch} frames, got {num_frames}")
        return slots

    def frames(self, slots: int) -> int:
        return 1 + (slots - 1) * self.temporal_patch

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.slots(self.num_frames), self.height // self.patch_size, self.width // self.patch_size


class SpaceTimeTransformer(nn.Module):
    """Spatial blocks within each time slot, then causal temporal blocks along slots at each position."""

    def __init__(self, config: CViViTConfig) -> None:
        super().__init__()
        c = config
        h, w = c.height // c.patch_size, c.width // c.patch_size
        self.pos_hw = nn.Parameter(torch.randn(h * w, c.dim) * 0.02)
        self.pos_t = nn.Parameter(torch.randn(c.max_slots, c.dim) * 0.02)
        self.spatial = nn.ModuleList(TransformerBlock(c.dim, c.heads) for _ in range(c.spatial_layers))
        self.temporal = nn.ModuleList(TransformerBlock(c.dim, c.heads, causal=True) for _ in range(c.temporal_layers))

    def forward(self, x: torch.Tensor, *, temporal_first: bool = False) -> torch.Tensor:
        """x: (B, S, h, w, D) -> same shape; the decoder runs the temporal stage first (mirror)."""
        order = (self._temporal, self._spatial) if temporal_first else (self._spatial, self._temporal)
        for stage in order:
            x = stage(x)
        return x

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h, w, _ = x.shape
        y = rearrange(x, "b s h w d -> (b s) (h w) d") + self.pos_hw
        for block in self.spatial:
            y = block(y)
        return rearrange(y, "(b s) (h w) d -> b s h w d", b=b, h=h)

    def _temporal(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h, w, _ = x.shape
        y = rearrange(x, "b s h w d -> (b h w) s d") + self.pos_t[:s]
        for block in self.temporal:
            y = block(y)  # causal: slot s sees slots <= s
        return rearrange(y, "(b h w) s d -> b s h w d", b=b, h=h, w=w)


class PixelRefiner(nn.Module):
    """Three 3x3 convolutions over each decoded frame, added to it: they see across the borders of the
    8x8 patches that the linear patch decoder draws one by one, so they can mend seams and corners.
    Frame by frame, so decoding stays causal; the last convolution starts at zero (the identity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(channels, 3, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> same shape."""
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        return video + rearrange(self.net(frames), "(b t) c h w -> b c t h w", b=video.shape[0])


class CViViT(VQVideoTokenizer):
    """Causal video tokenizer: (B, 3, 1 + k*pt, H, W) <-> codes (B, 1 + k, H/p, W/p)."""

    family = "phenaki-cvivit"
    config_class = CViViTConfig
    encoding_parts = ("first_in", "tube_in", "encoder", "to_code", "quantizer")
    presets: dict = {}  # filled at the end of the file

    def __init__(self, config: CViViTConfig) -> None:
        super().__init__()
        self.config = c = config
        p, pt = c.patch_size, c.temporal_patch
        self.first_in, self.tube_in = nn.Linear(3 * p * p, c.dim), nn.Linear(3 * pt * p * p, c.dim)
        self.encoder = SpaceTimeTransformer(c)
        self.to_code = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.code_dim))
        self.quantizer = EMAVectorQuantizer(c.codebook_size, c.code_dim, decay=c.ema_decay, commitment=c.commitment)
        self.from_code = nn.Linear(c.code_dim, c.dim)
        self.decoder = SpaceTimeTransformer(c)
        self.out_norm = nn.LayerNorm(c.dim)
        self.first_out, self.tube_out = nn.Linear(c.dim, 3 * p * p), nn.Linear(c.dim, 3 * pt * p * p)
        self.refine = PixelRefiner(c.refine_channels) if c.refine_channels else nn.Identity()

    def embed_patches(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, S, h, w, D): the first frame as image patches, the rest as tubelets."""
        p, pt = self.config.patch_size, self.config.temporal_patch
        self.config.slots(video.shape[2])  # checks the frame count
        first = rearrange(video[:, :, :1], "b c 1 (h p1) (w p2) -> b 1 h w (c p1 p2)", p1=p, p2=p)
        rest = rearrange(video[:, :, 1:], "b c (s pt) (h p1) (w p2) -> b s h w (c pt p1 p2)", pt=pt, p1=p, p2=p)
        return torch.cat([self.first_in(first), self.tube_in(rest)], dim=1)

    def unembed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, h, w, D) -> (B, 3, T, H, W)."""
        p, pt = self.config.patch_size, self.config.temporal_patch
        x = self.out_norm(x)
        first = rearrange(self.first_out(x[:, :1]), "b 1 h w (c p1 p2) -> b c 1 (h p1) (w p2)", p1=p, p2=p)
        rest = rearrange(self.tube_out(x[:, 1:]), "b s h w (c pt p1 p2) -> b c (s pt) (h p1) (w p2)", pt=pt, p1=p, p2=p)
        return self.refine(torch.cat([first, rest], dim=2))

    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(self.embed_patches(video)))  # (B, S, h, w, code_dim)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> codes (B, S, h, w)."""
        z = self.encode_latents(video)
        return self.quantizer.nearest_codes(rearrange(z, "b s h w d -> (b s h w) d")).view(z.shape[:-1])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, S, h, w) -> (B, 3, 1 + (S-1)*pt, H, W) in [-1, 1]."""
        return self.decode_latents(self.quantizer.lookup(codes)).clamp(-1, 1)

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.unembed_patches(self.decoder(self.from_code(z_q), temporal_first=True))

    def forward(self, video: torch.Tensor):
        q = self.quantizer(self.encode_latents(video))
        return self.decode_latents(self.decoder_input(q)), q


# ----------------------------------------------------------------------------- stage 2: MaskGIT
def mask_ratio(progress: torch.Tensor | float) -> torch.Tensor:
    """Cosine schedule: share of tokens masked at progress r in [0, 1] (1 at r=0, 0 at r=1)."""
    return torch.cos(math.pi / 2 * torch.as_tensor(progress, dtype=torch.float32))


@dataclass
class PhenakiConfig:
    """The masked transformer; ``tokenizer`` is the stage-1 checkpoint directory used in training."""

    tokenizer: str = "runs/phenaki-cvivit/model"
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    dim: int = 256
    layers: int = 6
    heads: int = 8
    text_dropout: float = 0.1  # share of captions replaced by the null text, for classifier-free guidance
    prefix_prob: float = 0.25  # share of training clips whose first slot is given, as in continuation
    guidance: float = 3.0
    steps: int = 12  # parallel decoding steps at sampling
    temperature: float = 1.0
    choice_temperature: float = 4.5  # Gumbel noise on confidences, annealed to 0 (MaskGIT)
    cvivit: CViViTConfig = field(default_factory=CViViTConfig)  # filled from the tokenizer checkpoint


class Phenaki(TokenizerPrior):
    """Bidirectional transformer over (slot, h, w) codes with text cross-attention, MaskGIT decoding."""

    family = "phenaki"
    config_class = PhenakiConfig
    presets: dict = {}
    tokenizer_class, tokenizer_field = CViViT, "cvivit"
    sampling_options = ("guidance", "temperature", "choice_temperature", "steps", "first_frame")
    # bfloat16 sampling: 0.445 s against 0.693 s per video on 2 AMX-BF16 Xeon threads, checker rates
    # unchanged within noise (seen 5% / held-out 9% against 6% / 7%, n=100); a pipeline's "auto" uses it
    bf16_sampling = True

    def __init__(self, config: PhenakiConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config.cvivit, config.dim
        self.tokenizer = CViViT(c).requires_grad_(False).eval()
        self.text = TextConditioner(config.text, d)
        self.mask_id = c.codebook_size
        self.code_embed = nn.Embedding(c.codebook_size + 1, d)  # the last id is [MASK]
        _, h, w = c.latent_shape
        self.pos_t, self.pos_h, self.pos_w = (nn.Parameter(torch.randn(n, d) * 0.02) for n in (c.max_slots, h, w))
        self.blocks = nn.ModuleList(TransformerBlock(d, config.heads, context_dim=d) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.codebook_size)
        self.apply(init_transformer_weights)

    @property
    def video_shape(self) -> tuple[int, int, int]:
        c = self.config.cvivit
        return c.num_frames, c.height, c.width

    @property
    def num_tokens(self) -> int:
        s, h, w = self.config.cvivit.latent_shape
        return s * h * w

    def positions(self, slots: int) -> torch.Tensor:
        """Factorised position embedding of a (slots, h, w) grid, flattened: (N, D)."""
        pos = self.pos_t[:slots, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        return rearrange(pos, "s h w d -> (s h w) d")

    def forward(self, tokens: torch.Tensor, prompts: list[str], drop: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, N, K) for a token grid (B, S, h, w) in which masked places hold ``mask_id``."""
        context, mask, pooled = self.text(prompts, drop)
        x = self.code_embed(rearrange(tokens, "b s h w -> b (s h w)")) + self.positions(tokens.shape[1])
        x = x + pooled[:, None]  # (B, N, D)
        for block in self.blocks:
            x = block(x, context, mask)
        return self.head(self.norm(x))

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        device = self.head.weight.device
        codes = self.stage1_codes(batch, device)  # (B, S, h, w)
        b, s, h, w = codes.shape
        ratio = mask_ratio(torch.rand(b, device=device))  # (B,)
        masked = torch.rand(b, s, h, w, device=device) < ratio[:, None, None, None]
        prefix = torch.rand(b, device=device) < self.config.prefix_prob  # first slot given, as in continuation
        masked[:, 0] &= ~prefix[:, None, None]
        first_free = h * w if s > 1 else 0  # mask at least one token, outside a given first slot
        masked.view(b, -1)[torch.arange(b), torch.randint(first_free, s * h * w, (b,))] = True
        drop = torch.rand(b, device=device) < self.config.text_dropout
        logits = self(torch.where(masked, self.mask_id, codes), batch["caption"], drop)  # (B, N, K)
        loss = F.cross_entropy(logits[masked.view(b, -1)], codes[masked])
        return loss, {"ce": loss.item(), "masked": masked.float().mean().item()}

    @torch.inference_mode()
    def generate_codes(self, prompts: list[str], *, generators: list[torch.Generator] | None = None,
                       prefix: torch.Tensor | None = None, slots: int | None = None, steps: int | None = None,
                       guidance: float | None = None, temperature: float | None = None,
                       choice_temperature: float | None = None) -> torch.Tensor:
        """MaskGIT decoding of a (B, S, h, w) grid; ``prefix`` (B, P, h, w) codes of the first slots are kept.
        ``choice_temperature`` scales the Gumbel noise on the confidences that pick which tokens to keep."""
        cfg = self.config
        steps = cfg.steps if steps is None else steps
        if not MIN_STEPS <= steps <= MAX_STEPS:
            raise T2VError(f"steps must be {MIN_STEPS}..{MAX_STEPS}, got {steps}")
        guidance = cfg.guidance if guidance is None else guidance
        temperature = cfg.temperature if temperature is None else temperature
        choice_temperature = cfg.choice_temperature if choice_temperature is None else choice_temperature
        if choice_temperature < 0:
            raise T2VError(f"choice_temperature must be >= 0, got {choice_temperature}")
        b, guided = len(prompts), guidance != 1.0
        s_default, h, w = cfg.cvivit.latent_shape
        slots = slots or s_default
        device = self.head.weight.device
        tokens = torch.full((b, slots, h, w), self.mask_id, dtype=torch.long, device=device)
        if prefix is not None:
            tokens[:, :prefix.shape[1]] = prefix
        unknown = (tokens == self.mask_id).view(b, -1)  # (B, N)
        total = unknown.sum(1)  # (B,)
        drop = TextConditioner.guidance_drop(b, guided, device)
        prompts2 = prompts * (2 if guided else 1)
        for step in range(steps):
            logits = self(tokens.repeat(2 if guided else 1, 1, 1, 1), prompts2, drop).float()  # (B', N, K)
            if guided:
                cond, uncond = logits.chunk(2)
                logits = uncond + guidance * (cond - uncond)
            sampled = sample_logits(logits, generators=generators, temperature=temperature)  # (B, N)
            flat = tokens.view(b, -1)
            sampled = torch.where(unknown, sampled, flat)
            confidence = torch.log_softmax(logits, -1).gather(-1, sampled[..., None])[..., 0]  # (B, N)
            noise = -torch.log(-torch.log(uniform_per_row(generators, b, device, (flat.shape[1],)).clamp(1e-20, 1 - 1e-7)))
            confidence = confidence + choice_temperature * (1 - (step + 1) / steps) * noise
            confidence = confidence.masked_fill(~unknown, float("inf"))  # given and decided tokens stay
            still_masked = (mask_ratio((step + 1) / steps) * total).floor().long()  # (B,)
            order = confidence.argsort(dim=1)  # least confident first
            ranks = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=device).expand_as(order))
            remask = ranks < still_masked[:, None]
            tokens = torch.where(remask, self.mask_id, sampled).view(b, slots, h, w)
            unknown = remask
        return tokens

    @torch.inference_mode()
    def generate(self, prompts: list[str], *, generators: list[torch.Generator] | None = None,
                 first_frame: torch.Tensor | None = None, **options) -> torch.Tensor:
        """Prompts -> uint8 frames (B, T, H, W, 3); ``first_frame`` uint8 (B, H, W, 3) is continued."""
        prefix = None
        if first_frame is not None:
            prefix = self.tokenizer.encode(frames_to_tensor(torch.as_tensor(first_frame)[:, None]))  # (B or 1, 1, h, w)
            prefix = prefix.expand(len(prompts), -1, -1, -1)
        return tensor_to_frames(self.tokenizer.decode(self.generate_codes(prompts, generators=generators, prefix=prefix,
                                                                          **options)))

    @torch.inference_mode()
    def continue_video(self, frames: torch.Tensor, prompts: list[str], num_frames: int, *,
                       generators: list[torch.Generator] | None = None, **options) -> torch.Tensor:
        """``num_frames`` new frames (B, num_frames, H, W, 3) after ``frames`` (B, T, H, W, 3), following ``prompts``.

        Each window re-encodes the last frame as its first slot (the causal tokenizer makes its
        codes independent of what follows), fills the other slots, and keeps the frames after it.
        """
        window = self.config.cvivit.latent_shape[0]
        out, last = [], torch.as_tensor(frames)[:, -1]
        made = 0
        while made < num_frames:
            video = self.generate(prompts, generators=generators, first_frame=last, slots=window, **options)
            new = video[:, 1:]  # frame 0 re-draws the given frame
            out.append(new)
            made += new.shape[1]
            last = new[:, -1]
        return torch.cat(out, dim=1)[:, :num_frames]

    def preview(self, batch: dict) -> torch.Tensor:
        """Samples for the captions of a batch (the trainer's sample grid)."""
        return self.generate(batch["caption"])


# ----------------------------------------------------------------------------- size presets
CViViT.presets = {
    "tiny": dict(dim=32, heads=2, spatial_layers=1, temporal_layers=1, codebook_size=64, code_dim=8),
    "shapes": dict(),
}
Phenaki.presets = {
    "tiny": dict(dim=32, layers=2, heads=2),
    "S": dict(dim=256, layers=6, heads=8),
}
