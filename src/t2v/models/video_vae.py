"""The video compression network of the latent diffusion families (Sora's "video compression
network", MagicVideo's VAE): a KL-regularised video autoencoder built from causal 3D convolutions.

Time is causal everywhere: a latent frame depends only on input frames up to its own, and a
decoded frame only on latents up to its own; normalisation is per frame. So appending frames never
changes earlier latents, and a single image is a one-frame video. Time is compressed by
``temporal_downsample`` (default 4) and space by ``spatial_downsample`` (default 8):
(B, 3, T, H, W) in [-1, 1] -> latents (B, C, ceil(T / 4), H / 8, W / 8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from t2v.errors import T2VError
from t2v.models.stages import VideoAutoencoder
from t2v.nn.conv3d import downsample_strides
from t2v.nn.pixels import frames_to_tensor


@dataclass
class VideoVAEConfig:
    channels: list[int] = field(default_factory=lambda: [64, 128, 128])  # width after each downsampling
    num_res_blocks: int = 2  # residual blocks at the latent resolution, in the encoder and in the decoder
    latent_channels: int = 8
    temporal_downsample: int = 4
    spatial_downsample: int = 8
    kl_weight: float = 1e-6
    l1_weight: float = 0.0  # weight of an L1 term beside the MSE (VQGAN's reconstruction loss)
    edge_weight: float = 0.0  # weight of the gradient difference loss (sharper edges; see reconstruction_loss)
    chroma_weight: float = 0.0  # weight of the hue error of lit pixels (small objects' colours; see chroma_difference)
    num_frames: int = 16  # the training size; any size divisible by the spatial factor encodes
    height: int = 64
    width: int = 64

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.latent_frames(self.num_frames), self.height // self.spatial_downsample, \
            self.width // self.spatial_downsample

    def latent_frames(self, num_frames: int) -> int:
        return -(-num_frames // self.temporal_downsample)


class CausalConv3d(nn.Module):
    """3D convolution padded only on the past side in time (replicating the first frame), "same" in space."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.time_pad = kernel - stride[0]  # output j sees frames up to stride * j + stride - 1
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=(0, kernel // 2, kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        return self.conv(x)


class FrameNorm(nn.GroupNorm):
    """GroupNorm over each frame on its own: statistics across time would leak the future."""

    def __init__(self, channels: int) -> None:
        super().__init__(min(32, channels), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        y = super().forward(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(y, "(b t) c h w -> b c t h w", t=t)


class CausalResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(FrameNorm(c_in), nn.SiLU(), CausalConv3d(c_in, c_out),
                                  FrameNorm(c_out), nn.SiLU(), CausalConv3d(c_out, c_out))
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class CausalUpsample(nn.ConvTranspose3d):
    """Transposed conv upsampling by ``stride`` (t, h, w) whose time kernel equals its time stride, so
    output frames t * j .. t * j + t - 1 come from latent frame j alone (causal, no overlap in time)."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int, int]) -> None:
        kernel = (stride[0], *(4 if s == 2 else 3 for s in stride[1:]))
        super().__init__(c_in, c_out, kernel, stride=stride, padding=(0, 1, 1))


class VideoVAE(VideoAutoencoder):
    family = "video-vae"
    config_class = VideoVAEConfig
    presets: dict = {}  # filled at the end of the file

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        self.config = config
        strides = downsample_strides(config.temporal_downsample, config.spatial_downsample)
        widths = [config.channels[min(i, len(config.channels) - 1)] for i in range(len(strides))]
        bottleneck = lambda: [CausalResBlock(widths[-1], widths[-1]) for _ in range(config.num_res_blocks)]  # noqa: E731
        # strided causal convs straight from pixels (no full-resolution blocks: they cost most and add little)
        enc: list[nn.Module] = []
        for c_in, c_out, stride in zip([3] + widths[:-1], widths, strides):
            enc += [CausalConv3d(c_in, c_out, kernel=3, stride=stride), nn.SiLU()]
        enc += [*bottleneck(), FrameNorm(widths[-1]), nn.SiLU(), CausalConv3d(widths[-1], 2 * config.latent_channels)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [CausalConv3d(config.latent_channels, widths[-1]), *bottleneck(),
                                FrameNorm(widths[-1]), nn.SiLU()]
        outs = widths[::-1][1:] + [3]
        for i, (c_in, c_out, stride) in enumerate(zip(widths[::-1], outs, strides[::-1])):
            dec.append(CausalUpsample(c_in, c_out, stride))
            if i < len(strides) - 1:
                dec.append(nn.SiLU())
        self.decoder = nn.Sequential(*dec)

    def check_size(self, video: torch.Tensor) -> None:
        s = self.config.spatial_downsample
        if video.shape[-2] % s or video.shape[-1] % s:
            raise T2VError(f"height and width must be multiples of {s}, got {video.shape[-2]}x{video.shape[-1]}")

    def pad_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame up to a multiple of the temporal factor (the padding is in the future:
        it never changes earlier latents)."""
        extra = -video.shape[2] % self.config.temporal_downsample
        return torch.cat([video, video[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2) if extra else video

    def moments(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, H, W) -> mean and log-variance (B, C, t, h, w)."""
        self.check_size(video)
        mean, logvar = self.encoder(self.pad_frames(video)).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> latents (B, C, ceil(T / t), H / s, W / s): the mean, or a sample."""
        mean, logvar = self.moments(video)
        if not sample:
            return mean
        return mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)

    def decode(self, latents: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """latents (B, C, t, h, w) -> (B, 3, num_frames or t * factor, H, W) in [-1, 1]."""
        video = self.decoder(latents).clamp(-1, 1)
        return video if num_frames is None else video[:, :, :num_frames]

    def forward(self, video: torch.Tensor):
        mean, logvar = self.moments(video)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()
        return self.decode(z, video.shape[2]), kl

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        video = frames_to_tensor(batch["video"]).to(self.decoder[0].conv.weight.device)  # (B, 3, T, H, W)
        recon, kl = self(video)
        loss, stats = self.configured_reconstruction_loss(recon, video)
        return loss + self.config.kl_weight * kl, {**stats, "kl": kl.item()}

    def reconstruct_tensor(self, video: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(video), video.shape[2])


VideoVAE.presets = {
    "tiny": dict(channels=[16, 16, 16], num_res_blocks=1, latent_channels=4),
    "shapes": dict(),
}
