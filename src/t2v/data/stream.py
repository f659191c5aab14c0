"""An endless stream of Moving Shapes examples for training: no disk, and addressable by position,
so a resumed run continues with exactly the examples it would have seen."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset

from t2v.data.shapes import make_example


@dataclass
class ShapesDataConfig:
    """Which part of the world to draw from."""

    split: str = "train"
    level2_prob: float = 0.25  # share of two-object videos
    num_frames: int = 16
    height: int = 64
    width: int = 64
    seed: int = 0


class ShapesStream(IterableDataset):
    """Example ``i`` is a pure function of (seed, i): iterate from any ``start`` position."""

    def __init__(self, config: ShapesDataConfig, start: int = 0) -> None:
        self.config, self.start = config, start

    def example(self, index: int) -> dict:
        c = self.config
        level = 2 if random.Random(f"level:{c.seed}:{index}").random() < c.level2_prob else 1
        ex = make_example(c.seed * 1_000_003 + index, level=level, split=c.split, num_frames=c.num_frames,
                          height=c.height, width=c.width)
        return {"video": torch.from_numpy(ex.video), "caption": ex.caption}

    def __iter__(self):
        index = self.start
        while True:
            yield self.example(index)
            index += 1

    def batch(self, position: int, batch_size: int) -> dict:
        """Examples [position, position + batch_size) stacked: video uint8 (B, T, H, W, 3), caption list."""
        items = [self.example(position + i) for i in range(batch_size)]
        return {"video": torch.stack([x["video"] for x in items]), "caption": [x["caption"] for x in items]}


def collate(items: list[dict]) -> dict:
    """Stack dataset items into a batch dict (the same layout ``ShapesStream.batch`` returns)."""
    return {"video": torch.stack([torch.as_tensor(np.asarray(x["video"])) for x in items]),
            "caption": [x["caption"] for x in items]}
