"""Fréchet video distance between two sets of videos, in the feature space of a pluggable network.

By default the network is the project's own Moving Shapes classifier (bundled ``fvd-shapes``): the
distance is then called "FVD-shapes" and is comparable only with other FVD-shapes numbers. With a
local I3D weights file (``--fvd-weights PATH``) it is the standard I3D-based FVD of the papers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from t2v.errors import T2VError

FVD_SHAPES_MODEL = "fvd-shapes"  # bundled checkpoint name of the default feature network
RESULT_KEY = {"fvd-shapes": "fvd_shapes", "i3d": "fvd_i3d"}  # feature network -> key in the eval JSON


class FeatureNet(Protocol):
    """What FVD needs of a network: a name and uint8 frames (B, T, H, W, 3) -> features (B, F)."""

    name: str

    def features(self, frames: torch.Tensor) -> torch.Tensor: ...


def load_feature_net(weights: str | Path | None = None, *, device: str | torch.device = "cpu") -> FeatureNet:
    """I3D from a local weights file when given, else the bundled FVD-shapes classifier."""
    if weights is not None:
        from t2v.eval.i3d import load_i3d

        return load_i3d(weights, device=device)
    from t2v.checkpoint import load_model
    from t2v.pipelines.base import bundled_dir, bundled_models

    directory = bundled_models().get(FVD_SHAPES_MODEL)
    if directory is None:
        raise T2VError(f"FVD-shapes needs the bundled {FVD_SHAPES_MODEL!r} checkpoint in {bundled_dir()}, "
                       f"or pass --fvd-weights PATH for I3D")
    return load_model(directory, family=FVD_SHAPES_MODEL, device=device)


@torch.no_grad()
def video_features(net: FeatureNet, frames_uint8_batches: Iterable) -> np.ndarray:
    """Features of every video in batches of uint8 frames (B, T, H, W, 3): float64 (N, F)."""
    feats = [net.features(torch.as_tensor(np.asarray(frames))).double().cpu() for frames in frames_uint8_batches]
    if not feats:
        raise T2VError("no videos to compute features of")
    return torch.cat(feats).numpy()


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigvecs * np.sqrt(eigvals.clip(min=0))) @ eigvecs.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features (N, F) and (M, F).

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)``, where ``tr (S_a S_b)^1/2`` is computed as
    ``tr (S_a^1/2 S_b S_a^1/2)^1/2``: a symmetric matrix, so the result is real and stable.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise T2VError(f"need two feature sets (N, F) with the same F and N >= 2, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # (F, F)
    root_a = psd_sqrt(cov_a)
    cross = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(np.linalg.eigvalsh((cross + cross.T) / 2).clip(min=0)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    return float(max(distance, 0.0))  # rounding can dip a hair below zero for identical sets
