"""Shared fixtures: tiny configs that build and train in seconds on a CPU."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: no busy-waiting threads

import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)

from t2v.data import workers  # noqa: E402

workers.WORKER_TIMEOUT_S = 120  # a batch stuck in a DataLoader worker fails its test in 2 minutes, not 10


@pytest.fixture
def tiny_vqvae_config():
    from t2v.models.videogpt import VQVAEConfig

    return VQVAEConfig(channels=[16, 32], num_res_blocks=1, attn_heads=2, codebook_size=32, code_dim=16,
                       temporal_downsample=2, spatial_downsample=4, num_frames=8, height=32, width=32)


@pytest.fixture
def tiny_videogpt(tiny_vqvae_config):
    from t2v.models.videogpt import VideoGPT, VideoGPTConfig
    from t2v.text import TextEncoderConfig

    torch.manual_seed(0)
    text = TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256)
    return VideoGPT(VideoGPTConfig(dim=32, layers=2, heads=2, text=text, vqvae=tiny_vqvae_config))


@pytest.fixture
def shapes_batch():
    from t2v.data.stream import ShapesDataConfig, ShapesStream

    return ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 4)
