"""A video-text matcher (CLIP, Radford et al. 2021, for video): a 3D-CNN video tower and a frozen
text encoder with a trained head embed both into one space, where the cosine says how well a video
fits a caption. Pipelines use it to rerank: draw N candidates per prompt, keep the best match
(DALL-E's CLIP reranking; CogView's reranking in the same spirit).

Trained contrastively on captioned videos. Besides the other captions of the batch, each video meets
hard negatives: captions of its own scene with one attribute of one object changed ("a red *square*
moving left" for a red circle), so the matcher learns the details a generator gets wrong. Generated
videos are softer than rendered ones, so training videos are blurred and noised at random.

An optional second video tower (``shape_channels``) sees only the brightest channel of each pixel, a
colour-blind silhouette at full resolution: shape, size and motion read there cannot depend on the
colour, so they carry over to colour-shape pairs the matcher never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from t2v.errors import T2VError
from t2v.models.shapes_classifier import conv_tower, video_at_shape
from t2v.text import TextEncoderConfig, build_text_encoder


@dataclass
class MatcherConfig:
    """Video tower (conv stages: width and (t, h, w) stride each), joint width, augmentation."""

    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 192])
    strides: list[list[int]] = field(default_factory=lambda: [[1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]])
    shape_channels: list[int] = field(default_factory=list)  # the colour-blind silhouette tower; empty: none
    shape_strides: list[list[int]] = field(default_factory=list)
    dim: int = 256  # joint embedding width
    text_head: str = "mlp"  # "mlp" or "linear" (CLIP's): how the frozen text encoder's pooled vector is projected
    max_blur: float = 1.0  # training videos are blurred with a Gaussian of sigma U(0, max_blur) pixels ...
    blur_prob: float = 0.5  # ... this share of them
    noise: float = 0.05  # std of Gaussian noise added to training videos (range [-1, 1])
    num_frames: int = 16
    height: int = 64
    width: int = 64


def gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (C, T, H, W) over H and W with a Gaussian of ``sigma`` pixels (separable, edges replicated)."""
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=video.dtype, device=video.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c, t, h, w = video.shape
    y = rearrange(video, "c t h w -> (c t) 1 h w")
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return rearrange(y, "(c t) 1 h w -> c t h w", c=c, t=t)


def silhouette(video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> colour-blind (B, 1, T, H, W) in [-1, 1]: each pixel's brightest
    channel over the video's brightest, so an object of any palette colour is about 1 on -1 black."""
    light = reduce(video, "b c t h w -> b 1 t h w", "max") + 1  # [0, 2], black 0
    return 2 * light / reduce(light, "b 1 t h w -> b 1 1 1 1", "max").clamp(min=0.1) - 1


class VideoTextMatcher(nn.Module):
    """``score(frames, prompts)``: cosine of video and caption embeddings, (B,) in [-1, 1]."""

    family = "matcher"
    config_class = MatcherConfig
    presets: dict = {}  # filled at the end of the file

    def __init__(self, config: MatcherConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = conv_tower(config.channels, config.strides)
        self.shape_stages = (conv_tower(config.shape_channels, config.shape_strides, in_channels=1)
                             if config.shape_channels else None)
        features = config.channels[-1] + (config.shape_channels[-1] if config.shape_channels else 0)
        self.video_proj = nn.Linear(features, config.dim)
        self.text = build_text_encoder(config.text)
        if config.text_head not in ("mlp", "linear"):
            raise T2VError(f"text_head must be mlp or linear, got {config.text_head!r}")
        self.text_proj = (nn.Linear(self.text.dim, config.dim) if config.text_head == "linear" else
                          nn.Sequential(nn.Linear(self.text.dim, config.dim), nn.GELU(), nn.Linear(config.dim, config.dim)))
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's start

    @property
    def device(self) -> torch.device:
        return self.video_proj.weight.device

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) of any size -> (B, 3, T, H, W) in [-1, 1] at the trained video shape."""
        c = self.config
        return video_at_shape(frames, (c.num_frames, c.height, c.width), self.device)

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> unit vectors (B, dim)."""
        features = reduce(self.stages(video), "b f t h w -> b f", "mean")
        if self.shape_stages is not None:
            shape = reduce(self.shape_stages(silhouette(video)), "b f t h w -> b f", "mean")
            features = torch.cat([features, shape], dim=1)  # (B, F + F_shape)
        return F.normalize(self.video_proj(features), dim=-1)

    def embed_text(self, prompts: list[str]) -> torch.Tensor:
        """Captions -> unit vectors (B, dim), from the text encoder's pooled vector."""
        pooled = self.text(prompts).pooled.to(self.device)
        return F.normalize(self.text_proj(pooled), dim=-1)

    @torch.no_grad()
    def score(self, frames: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) against one prompt each -> cosine (B,)."""
        if len(frames) != len(prompts):
            raise T2VError(f"give one prompt per video: {len(frames)} videos, {len(prompts)} prompts")
        return (self.embed_video(self.prepare(frames)) * self.embed_text(prompts)).sum(-1).float().cpu()

    def augment(self, video: torch.Tensor) -> torch.Tensor:
        """Blur a random share of the videos (B, 3, T, H, W) and add noise: generated videos are softer."""
        c = self.config
        out = []
        for v in video:
            if c.max_blur > 0 and torch.rand(()) < c.blur_prob:
                v = gaussian_blur(v, float(torch.empty(()).uniform_(0.3, c.max_blur)))
            out.append(v)
        video = torch.stack(out)
        return (video + c.noise * torch.randn_like(video)).clamp(-1, 1) if c.noise else video

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Symmetric InfoNCE over the batch; each video also ranks its hard-negative captions."""
        if "negatives" not in batch:
            raise T2VError("the matcher trains on hard negatives: set `negatives: 4` (say) in the config's data section")
        captions, negatives = batch["caption"], batch["negatives"]  # B captions, B lists of K captions
        b, k = len(captions), len(negatives[0])
        video = self.embed_video(self.augment(self.prepare(batch["video"])))  # (B, D)
        text = self.embed_text(captions + [n for row in negatives for n in row])  # (B + B K, D)
        positive, hard = text[:b], rearrange(text[b:], "(b k) d -> b k d", k=k)
        scale = self.logit_scale.clamp(max=4.6052).exp()  # at most 100, as CLIP
        in_batch = scale * video @ positive.T  # (B, B): video i against caption j
        own_hard = scale * torch.einsum("bd,bkd->bk", video, hard)  # (B, K)
        target = torch.arange(b, device=video.device)
        loss_video = F.cross_entropy(torch.cat([in_batch, own_hard], dim=1), target)
        loss_text = F.cross_entropy(in_batch.T, target)
        hard_right = (in_batch.diagonal()[:, None] > own_hard).all(1).float().mean()
        return (loss_video + loss_text) / 2, {"hard_acc": hard_right.item(), "scale": scale.item()}


@torch.no_grad()
def hard_negative_accuracy(matcher: VideoTextMatcher, *, split: str = "test", n: int = 256, negatives: int = 4,
                           level: int = 1, seed: int = 0) -> dict[str, float]:
    """Share of ``n`` rendered videos whose own caption outscores each caption one attribute away,
    overall and per changed attribute (the ``split`` "test" holds the held-out colour-shape pairs, and
    its negatives may name them too: a held-out video with its size changed is still a held-out pair)."""
    import random

    from t2v.data.shapes import counterfactual_scenes, describe_scene, make_example

    wins = {name: [0, 0] for name in ("colour", "shape", "size", "motion")}
    all_right = 0
    for i in range(n):
        example = make_example(seed + i, level=level, split=split)
        rng = random.Random(f"hard-negatives:{seed}:{i}")
        others = counterfactual_scenes(example.scene, rng, negatives, held_out=split == "test")
        scores = matcher.score(torch.from_numpy(example.video)[None].expand(1 + negatives, -1, -1, -1, -1),
                               [example.caption, *(describe_scene(s, rng) for s in others)])
        beaten = scores[0] > scores[1:]  # (negatives,)
        all_right += int(beaten.all())
        for other, win in zip(others, beaten.tolist()):
            changed = next(name for name in wins for a, b in zip(example.scene.objects, other.objects)
                           if getattr(a, name) != getattr(b, name))
            wins[changed][0] += int(win)
            wins[changed][1] += 1
    return {"all": all_right / n, **{name: w / max(total, 1) for name, (w, total) in wins.items()}}


VideoTextMatcher.presets = {
    "tiny": dict(channels=[8, 16], strides=[[1, 2, 2], [2, 2, 2]], dim=32),
    "tiny-silhouette": dict(channels=[8, 16], strides=[[1, 2, 2], [2, 2, 2]], shape_channels=[8, 16],
                            shape_strides=[[1, 1, 1], [2, 2, 2]], dim=32),
    "shapes": dict(),
}
