"""FVD-shapes: a small 3D-CNN that names the colour, shape, size and motion of a Moving Shapes object.

Its pooled features are the feature space of the project's default video distance, "FVD-shapes"
(``t2v.eval.fvd``). It is trained on one-object train-split videos and measured on the test split,
whose colour-shape pairs it never saw. FVD-shapes is not I3D-FVD: numbers are not comparable with papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn

from t2v.data.stream import ATTRIBUTES
from t2v.data.vocab import PALETTE
from t2v.errors import T2VError
from t2v.nn.pixels import frames_to_tensor


@dataclass
class ShapesClassifierConfig:
    """Conv stages (width and (t, h, w) stride each) and the video shape the classifier was trained on."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 192])  # the last is the feature size
    strides: list[list[int]] = field(default_factory=lambda: [[1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]])
    dropout: float = 0.0  # on the pooled features, in training only
    recolour_prob: float = 0.0  # share of training videos repainted in an off-palette colour (see recolour_off_palette)
    num_frames: int = 16
    height: int = 64
    width: int = 64


OFF_PALETTE_DISTANCE = 80.0  # RGB distance to every palette colour; the closest two (yellow, orange) are 76 apart
MIN_BRIGHTNESS = 60  # brightest channel of a repainted object, so it stays visible on black


def off_palette_colours(n: int) -> torch.Tensor:
    """``n`` random visible RGB colours, each farther than ``OFF_PALETTE_DISTANCE`` from every palette colour: (n, 3)."""
    palette = torch.tensor(list(PALETTE.values()), dtype=torch.float32)  # (8, 3)
    found = torch.empty(0, 3)
    while len(found) < n:  # rejection sampling; about half of the RGB cube qualifies
        candidates = torch.rand(4 * n, 3) * 255
        ok = (torch.cdist(candidates, palette).amin(1) > OFF_PALETTE_DISTANCE) & (candidates.amax(1) >= MIN_BRIGHTNESS)
        found = torch.cat([found, candidates[ok]])
    return found[:n].round().to(torch.uint8)


def recolour_off_palette(frames: torch.Tensor, prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Repaint the object of a random share of one-object videos (B, T, H, W, 3) in off-palette colours.

    Shape, size and motion must then be read without colour, yet no video ever shows a held-out
    colour-shape pair. Returns the frames and which videos were repainted (B,) bool.
    """
    frames = torch.as_tensor(frames).clone()
    chosen = torch.rand(len(frames)) < prob  # (B,)
    if chosen.any():
        picked = frames[chosen]  # (b, T, H, W, 3)
        colours = off_palette_colours(len(picked)).to(picked.device)[:, None, None, None]  # (b, 1, 1, 1, 3)
        frames[chosen] = torch.where(picked.amax(-1, keepdim=True) > 0, colours, picked)  # background stays black
    return frames, chosen


def conv_stage(in_ch: int, out_ch: int, stride: list[int]) -> nn.Sequential:
    """Conv3d (kernel 3, strided) + GroupNorm + SiLU."""
    return nn.Sequential(nn.Conv3d(in_ch, out_ch, 3, stride=tuple(stride), padding=1),
                         nn.GroupNorm(min(8, out_ch), out_ch), nn.SiLU())


def conv_tower(channels: list[int], strides: list[list[int]], in_channels: int = 3) -> nn.Sequential:
    """Video (B, in_channels, T, H, W) -> features (B, channels[-1], T', H', W'): one ``conv_stage`` per width."""
    if len(channels) != len(strides):
        raise T2VError(f"give one stride per conv stage: {len(channels)} channels, {len(strides)} strides")
    widths = [in_channels, *channels]
    return nn.Sequential(*(conv_stage(a, b, s) for a, b, s in zip(widths, widths[1:], strides)))


def video_at_shape(frames: torch.Tensor, shape: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) of any size -> (B, 3, T, H, W) in [-1, 1] resampled to ``shape`` (T, H, W)."""
    video = frames_to_tensor(frames).to(device)
    if tuple(video.shape[2:]) != tuple(shape):  # e.g. 8x32x32 videos of a tiny model
        video = F.interpolate(video, size=shape, mode="trilinear", align_corners=False)
    return video


class ShapesClassifier(nn.Module):
    """Strided 3D-conv stages, global average pool to a feature vector, one linear head per attribute."""

    family = "fvd-shapes"
    config_class = ShapesClassifierConfig
    presets: dict = {}  # filled at the end of the file
    name = family  # its name as an FVD feature network

    def __init__(self, config: ShapesClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = conv_tower(config.channels, config.strides)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(config.channels[-1], len(values)) for name, values in ATTRIBUTES.items()})

    @property
    def feature_dim(self) -> int:
        return self.config.channels[-1]

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) of any size -> (B, 3, T, H, W) in [-1, 1] at the trained video shape."""
        c = self.config
        return video_at_shape(frames, (c.num_frames, c.height, c.width), self.heads["colour"].weight.device)

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> features (B, F); adaptive, so any T, H, W runs."""
        x = self.stages(video)  # (B, F, T', H', W')
        return reduce(x, "b f t h w -> b f", "mean")

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, T, H, W) in [-1, 1] -> logits per attribute, e.g. {"colour": (B, 8), ...}."""
        feats = self.dropout(self.pooled(video))  # (B, F)
        return {name: head(feats) for name, head in self.heads.items()}

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> pooled features (B, F), the FVD-shapes embedding."""
        return self.pooled(self.prepare(frames))

    @torch.no_grad()
    def classify(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> predicted attribute indices (B, 4), in ``ATTRIBUTES`` order."""
        logits = self(self.prepare(frames))
        return torch.stack([logits[name].argmax(-1) for name in ATTRIBUTES], dim=1)

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Sum of the four cross-entropies on one-object videos; logs the accuracy of each head."""
        if "labels" not in batch:
            raise T2VError("fvd-shapes trains on attribute labels: set `labels: true` in the config's data section")
        frames, labels = batch["video"], torch.as_tensor(batch["labels"]).clone()  # labels (B, 4)
        if self.training and self.config.recolour_prob:
            frames, repainted = recolour_off_palette(frames, self.config.recolour_prob)
            labels[repainted, 0] = -100  # a repainted object has no colour name: no colour loss
        labels = labels.to(self.heads["colour"].weight.device)
        logits = self(self.prepare(frames))
        losses, logs = [], {}
        for i, name in enumerate(ATTRIBUTES):
            known = labels[:, i] != -100  # (B,)
            if known.any():
                losses.append(F.cross_entropy(logits[name][known], labels[known, i]))
                logs[f"acc_{name}"] = (logits[name][known].argmax(-1) == labels[known, i]).float().mean().item()
        return sum(losses), logs


def attribute_accuracy(model: ShapesClassifier, batches) -> dict[str, float]:
    """Share of correct predictions per attribute over batches of dicts with "video" and "labels"."""
    correct, total = torch.zeros(len(ATTRIBUTES)), 0
    for batch in batches:
        labels = torch.as_tensor(batch["labels"])  # (B, 4)
        correct += (model.classify(batch["video"]).cpu() == labels).float().sum(0)
        total += len(labels)
    return {name: (correct[i] / total).item() for i, name in enumerate(ATTRIBUTES)}


# ----------------------------------------------------------------------------- size presets
ShapesClassifier.presets = {
    "tiny": dict(channels=[8, 16], strides=[[1, 2, 2], [2, 2, 2]]),
    "shapes": dict(),
}
