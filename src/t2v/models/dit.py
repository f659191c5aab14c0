"""DiT / Sora: a diffusion transformer over spacetime patches of video latents.

The video compression network (``VideoVAE``, stage 1) turns (B, 3, T, H, W) into latents
(B, C, T / 4, H / 8, W / 8); the DiT cuts them into (pt, ph, pw) patches, one token each, and
denoises the token sequence. Positions are 3D rotary embeddings, so any grid inside the trained
range works: any resolution, aspect ratio and duration, and one frame (an image).

Conditioning (``conditioning``; the DiT paper's comparison): ``adaln-zero`` regresses per-token
shift / scale / gate from timestep + pooled text, gates initialised to zero, with cross-attention to
the text tokens; ``in-context`` appends timestep and text tokens to the sequence; ``cross-attention``
attends to [timestep token, text tokens] only.

Prompting modes (Sora): clean latent frames can precede the noisy ones in the sequence, marked by
their own timestep 0 (per-token adaLN). Training shows the model a first image (its one-frame
latent) or the first latent frames of the clip, so sampling can start from an image prompt or
extend a given video forward in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from t2v.diffusion import (DiffusionConfig, DiffusionProcess, classifier_free_guidance, initial_noise, sample,
                           timestep_embedding)
from t2v.errors import T2VError
from t2v.models.stages import TokenizerPrior
from t2v.models.video_vae import VideoVAE, VideoVAEConfig
from t2v.nn.attention import CrossAttention, FeedForward, SelfAttention, init_transformer_weights
from t2v.nn.pixels import frames_to_tensor, tensor_to_frames
from t2v.nn.rope import no_rotation, rope_3d
from t2v.nn.text_condition import TextConditioner
from t2v.nn.threads import single_thread_for_small_batches
from t2v.text import TextEncoderConfig

CONDITIONINGS = ("adaln-zero", "in-context", "cross-attention")


@dataclass
class DiTConfig:
    tokenizer: str = "runs/video-vae/model"  # the stage-1 VAE checkpoint used in training
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    patch: list[int] = field(default_factory=lambda: [1, 2, 2])  # (pt, ph, pw) over latent (t, h, w)
    dim: int = 256
    layers: int = 6
    heads: int = 8
    conditioning: str = "adaln-zero"
    text_dropout: float = 0.1  # share of captions replaced by the null text, for classifier-free guidance
    image_prompt_prob: float = 0.1  # share of training batches that see their first frame as an image prompt
    extend_prob: float = 0.1  # share that see the first latent frames of the clip as known context
    extend_context: int = 2  # latent frames of a given video that condition an extension
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    num_frames: int = 16  # the default generation size
    height: int = 64
    width: int = 64
    max_frames: int = 32  # the range generation accepts (training covers it through size buckets)
    min_side: int = 32
    max_side: int = 128
    video_vae: VideoVAEConfig = field(default_factory=VideoVAEConfig)  # filled from the tokenizer checkpoint

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONINGS:
            raise T2VError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}")
        if self.conditioning != "adaln-zero" and (self.image_prompt_prob or self.extend_prob):
            raise T2VError("image prompts and extension need per-token timesteps: use conditioning adaln-zero, "
                             "or set image_prompt_prob and extend_prob to 0")


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def per_token(values: torch.Tensor, n_prefix: int, n: int) -> torch.Tensor:
    """(B, 2, X) values for [clean prefix tokens, noisy tokens] -> (B, n, X), or (B, 1, X) without a prefix.

    Modulation is computed once per kind of token rather than once per token."""
    if n_prefix == 0:
        return values[:, 1:]
    return torch.cat([values[:, :1].expand(-1, n_prefix, -1), values[:, 1:].expand(-1, n - n_prefix, -1)], dim=1)


class DiTBlock(nn.Module):
    """Self-attention (rotary 3D positions), cross-attention to text, MLP; adaLN-Zero modulation of
    the self-attention and MLP branches from conditioning vectors c (B, 2, D): one for the clean
    prefix tokens (``n_prefix`` of them), one for the noisy tokens."""

    def __init__(self, dim: int, heads: int, conditioning: str) -> None:
        super().__init__()
        adaln = conditioning == "adaln-zero"
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=not adaln, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.cross = None if conditioning == "in-context" else CrossAttention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=not adaln, eps=1e-6)
        self.mlp = FeedForward(dim)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim)) if adaln else None

    def forward(self, x, c, n_prefix, context, context_mask, rotary, attn_mask=None) -> torch.Tensor:
        if self.modulation is not None:
            mods = per_token(self.modulation(c), n_prefix, x.shape[1])  # (B, N or 1, 6D)
            shift1, scale1, gate1, shift2, scale2, gate2 = mods.chunk(6, dim=-1)
            x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), rotary=rotary)
        else:
            x = x + self.attn(self.norm1(x), rotary=rotary, attn_mask=attn_mask)
        if self.cross is not None:
            x = x + self.cross(self.norm2(x), context, context_mask)
        if self.modulation is not None:
            return x + gate2 * self.mlp(modulate(self.norm3(x), shift2, scale2))
        return x + self.mlp(self.norm3(x))


class DiT(TokenizerPrior):
    """Diffusion transformer over spacetime patches of the frozen video VAE's (normalised) latents."""

    family = "dit"
    config_class = DiTConfig
    presets: dict = {}  # filled at the end of the file
    tokenizer_class, tokenizer_field = VideoVAE, "video_vae"
    sampling_options = ("guidance", "steps", "sampler", "first_frame", "context")

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = VideoVAE(config.video_vae).requires_grad_(False).eval()
        self.process = DiffusionProcess(config.diffusion)
        c, d = config.video_vae.latent_channels, config.dim
        pt, ph, pw = config.patch
        self.register_buffer("latent_mean", torch.zeros(c))  # per-channel latent statistics, measured on
        self.register_buffer("latent_std", torch.ones(c))  # training videos when training starts
        self.patch_embed = nn.Linear(c * pt * ph * pw, d)
        self.time_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.text = TextConditioner(config.text, d)
        self.blocks = nn.ModuleList(DiTBlock(d, config.heads, config.conditioning) for _ in range(config.layers))
        adaln = config.conditioning == "adaln-zero"
        self.final_norm = nn.LayerNorm(d, elementwise_affine=not adaln, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d)) if adaln else None
        self.final = nn.Linear(d, c * pt * ph * pw)
        self.apply(init_transformer_weights)
        self.zero_init()

    def zero_init(self) -> None:
        """adaLN-Zero: every block starts as the identity, and the output as zero."""
        for block in self.blocks:
            if block.modulation is not None:
                nn.init.zeros_(block.modulation[-1].weight)
                nn.init.zeros_(block.modulation[-1].bias)
        if self.final_modulation is not None:
            nn.init.zeros_(self.final_modulation[-1].weight)
            nn.init.zeros_(self.final_modulation[-1].bias)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    @classmethod
    def for_training(cls, config: DiTConfig):
        model = super().for_training(config)
        model.measure_latent_statistics()
        return model

    @torch.no_grad()
    def measure_latent_statistics(self, n: int = 64) -> None:
        """Per-channel mean and std of the VAE latents of ``n`` training-split videos (Stable Diffusion's
        scale factor, per channel), so the diffusion runs on unit-variance latents."""
        from t2v.data.stream import ShapesDataConfig, ShapesStream

        vae = self.config.video_vae
        batch = ShapesStream(ShapesDataConfig(num_frames=vae.num_frames, height=vae.height, width=vae.width)).batch(
            10**9, n)  # far from the positions training reads first
        z = self.tokenizer.encode(frames_to_tensor(batch["video"]))
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3, 4)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4))

    # -- latents ------------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> normalised latents (B, C, t, h, w)."""
        return self.normalize(self.stage1_codes({"video": frames}, self.latent_std.device))

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """VAE latents (B, C, t, h, w) -> zero mean, unit variance per channel."""
        return (z.float() - self.latent_mean.view(-1, 1, 1, 1)) / self.latent_std.view(-1, 1, 1, 1)

    def decode(self, latents: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """normalised latents (B, C, t, h, w) -> uint8 (B, T, H, W, 3)."""
        z = latents.float() * self.latent_std.view(-1, 1, 1, 1) + self.latent_mean.view(-1, 1, 1, 1)
        return tensor_to_frames(self.tokenizer.decode(z, num_frames))

    # -- the denoiser -------------------------------------------------------------------------
    def patchify(self, latents: torch.Tensor) -> torch.Tensor:
        pt, ph, pw = self.config.patch
        return rearrange(latents, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)

    def unpatchify(self, tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        pt, ph, pw = self.config.patch
        t, h, w = grid
        return rearrange(tokens, "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)", t=t, h=h, w=w, pt=pt, ph=ph, pw=pw)

    def token_grid(self, latents: torch.Tensor) -> tuple[int, int, int]:
        (t, h, w), (pt, ph, pw) = latents.shape[2:], self.config.patch
        if t % pt or h % ph or w % pw:
            raise T2VError(f"latent grid {t}x{h}x{w} is not divisible by the patch {pt}x{ph}x{pw}")
        return t // pt, h // ph, w // pw

    def forward(self, x: torch.Tensor, times: torch.Tensor, text: tuple, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the diffusion target for noisy latents x (B, C, t, h, w) at times (B,).

        ``text`` = (context (B, L, D), mask (B, L), pooled (B, D)) from ``self.text``; ``prefix``
        (B, C, k, h, w): clean latent frames that come before x in time (timestep 0, no output).
        """
        context, context_mask, pooled = text
        grid = self.token_grid(x)
        k = 0 if prefix is None else self.token_grid(prefix)[0]
        tokens = self.patchify(x if prefix is None else torch.cat([prefix, x], dim=2))  # (B, N, patch)
        h = self.patch_embed(tokens)  # (B, N, D)
        n_prefix = k * grid[1] * grid[2]
        t_emb = self.time_embed(timestep_embedding(times, 256))  # (B, D)
        head_dim = self.config.dim // self.config.heads
        rotary = rope_3d(k + grid[0], grid[1], grid[2], head_dim, device=x.device)
        attn_mask = None
        conditioning = self.config.conditioning
        if conditioning == "adaln-zero":
            clean = self.time_embed(timestep_embedding(torch.zeros_like(times), 256))
            c = torch.stack([clean + pooled, t_emb + pooled], dim=1)  # (B, 2, D): prefix tokens, noisy tokens
        else:
            c = None
            if conditioning == "cross-attention":
                context = torch.cat([t_emb[:, None], context], dim=1)
                context_mask = torch.cat([context_mask.new_ones(context_mask.shape[0], 1), context_mask], dim=1)
            else:  # in-context: [time, text tokens, patches] in one sequence
                extra = torch.cat([t_emb[:, None], context], dim=1)  # (B, 1 + L, D)
                h = torch.cat([extra, h], dim=1)
                keep = torch.cat([context_mask.new_ones(x.shape[0], 1), context_mask,
                                  context_mask.new_ones(x.shape[0], tokens.shape[1])], dim=1)  # (B, N')
                attn_mask = keep[:, None, None, :]  # padded text tokens are never attended to
                cos, sin = no_rotation(extra.shape[1], head_dim, device=x.device)
                rotary = (torch.cat([cos, rotary[0]]), torch.cat([sin, rotary[1]]))
        for block in self.blocks:
            h = block(h, c, n_prefix, context, context_mask, rotary, attn_mask)
        h = h[:, h.shape[1] - tokens.shape[1]:][:, n_prefix:]  # the noisy frames' tokens
        h = self.final_norm(h)
        if self.final_modulation is not None:
            shift, scale = self.final_modulation(c[:, 1:]).chunk(2, dim=-1)  # (B, 1, D) each
            h = modulate(h, shift, scale)
        return self.unpatchify(self.final(h), grid).to(x.dtype)

    # -- training -----------------------------------------------------------------------------
    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        with torch.no_grad():  # cached latents (t2v data encode) or the VAE now: (B, C, t, h, w)
            latents = self.normalize(self.stage1_codes(batch, self.latent_std.device))
        prefix, mode = None, "text"
        u = torch.rand(()).item()
        if u < cfg.image_prompt_prob and "video" in batch:  # cached latents hold no separate first frame
            with torch.no_grad():
                prefix, mode = self.encode(batch["video"][:, :1]), "image"  # the first frame as a one-frame video
        elif u < cfg.image_prompt_prob + cfg.extend_prob and latents.shape[2] > 1:
            k = int(torch.randint(1, latents.shape[2], ()).item())
            prefix, latents, mode = latents[:, :, :k], latents[:, :, k:], "extend"
        drop = torch.rand(latents.shape[0]) < cfg.text_dropout
        text = self.text(batch["caption"], drop.to(latents.device))
        loss = self.process.training_loss(lambda x, t: self(x, t, text, prefix), latents)
        return loss, {"mse": loss.item(), "mode": {"text": 0, "image": 1, "extend": 2}[mode]}

    # -- sampling -----------------------------------------------------------------------------
    def check_size(self, num_frames: int, height: int, width: int) -> None:
        cfg, vae = self.config, self.config.video_vae
        side = vae.spatial_downsample * max(cfg.patch[1], cfg.patch[2])
        if not 1 <= num_frames <= cfg.max_frames:
            raise T2VError(f"num_frames must be between 1 and {cfg.max_frames}, got {num_frames}")
        for name, value in (("height", height), ("width", width)):
            if not cfg.min_side <= value <= cfg.max_side or value % side:
                raise T2VError(f"{name} must be a multiple of {side} between {cfg.min_side} and {cfg.max_side}, "
                                 f"got {value}")

    @torch.inference_mode()
    def generate(self, prompts: list[str], *, generators: list[torch.Generator] | None = None,
                 num_frames: int | None = None, height: int | None = None, width: int | None = None,
                 steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                 first_frame: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """Prompts -> uint8 frames (B, T, H, W, 3).

        ``first_frame`` uint8 (B or 1, H, W, 3): the image to start from. ``context`` uint8
        (B or 1, T', H, W, 3): a video to extend; the result is the ``num_frames`` frames that follow it.
        """
        cfg, vae = self.config, self.config.video_vae
        num_frames, height, width = num_frames or cfg.num_frames, height or cfg.height, width or cfg.width
        given = first_frame if first_frame is not None else context
        if given is not None:
            height, width = given.shape[-3], given.shape[-2]
        self.check_size(num_frames, height, width)
        diffusion = cfg.diffusion
        guidance = diffusion.guidance if guidance is None else guidance
        b = len(prompts)
        prefix, skip = None, 0
        if first_frame is not None:
            prefix = self.encode(first_frame[:, None].expand(b, -1, -1, -1, -1))  # (B, C, 1, h, w)
        elif context is not None:
            frames = vae.temporal_downsample * min(cfg.extend_context, context.shape[1] // vae.temporal_downsample)
            if frames == 0:
                raise T2VError(f"a video to extend needs at least {vae.temporal_downsample} frames")
            prefix, skip = self.encode(context[:, -frames:].expand(b, -1, -1, -1, -1)), frames
        shape = (b, vae.latent_channels, vae.latent_frames(num_frames), height // vae.spatial_downsample,
                 width // vae.spatial_downsample)
        device = self.latent_std.device
        guided = guidance != 1.0
        text = self.text(prompts * (2 if guided else 1), TextConditioner.guidance_drop(b, guided, device))
        prefix2 = None if prefix is None else (torch.cat([prefix, prefix]) if guided else prefix)

        denoise = classifier_free_guidance(lambda x, t, guided: self(x, t, text, prefix2), guidance)
        with single_thread_for_small_batches(b * (2 if guided else 1)):
            latents = sample(denoise, self.process, initial_noise(shape, generators, device),
                             sampler=sampler or diffusion.sampler, steps=steps or diffusion.steps, generators=generators)
            if context is not None:  # decode with the context so the causal decoder continues smoothly
                return self.decode(torch.cat([prefix, latents], dim=2), skip + num_frames)[:, skip:]
            return self.decode(latents, num_frames)

    @property
    def video_shape(self) -> tuple[int, int, int]:
        return self.config.num_frames, self.config.height, self.config.width

    def preview(self, batch: dict) -> torch.Tensor:
        """Samples for the captions of a batch (the trainer's sample grid)."""
        t, h, w = batch["video"].shape[1:4]
        return self.generate(batch["caption"], num_frames=t, height=h, width=w)


DiT.presets = {
    "tiny": dict(dim=32, layers=2, heads=2),
    "S": dict(dim=256, layers=6, heads=8),
    "B": dict(dim=384, layers=12, heads=6),
}
