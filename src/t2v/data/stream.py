"""An endless stream of Moving Shapes examples for training: no disk, and addressable by position,
so a resumed run continues with exactly the examples it would have seen."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import IterableDataset

from t2v.data.shapes import ShapeObject, counterfactual_scenes, describe_scene, make_example
from t2v.data.vocab import COLOURS, MOTIONS, SHAPES, SIZES

# attribute name -> its values; a label is the value's index (the order of ``object_labels``)
ATTRIBUTES: dict[str, tuple[str, ...]] = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "motion": MOTIONS}


@dataclass
class ShapesDataConfig:
    """Which part of the world to draw from."""

    split: str = "train"
    level2_prob: float = 0.25  # share of two-object videos
    num_frames: int = 16
    height: int = 64
    width: int = 64
    seed: int = 0
    labels: bool = False  # add "labels": the first object's attribute indices (B, 4), for classifiers
    negatives: int = 0  # add "negatives": per video this many captions of scenes one attribute away (matchers)
    # (num_frames, height, width) sizes drawn per batch (bucketing by size and duration); empty: the fixed size
    buckets: list[list[int]] = field(default_factory=list)


def object_labels(obj: ShapeObject) -> torch.Tensor:
    """Attribute indices of one object, in ``ATTRIBUTES`` order: (4,) int64."""
    return torch.tensor([values.index(getattr(obj, name)) for name, values in ATTRIBUTES.items()])


def choose_bucket(buckets: list[list[int]], seed: int, position: int) -> tuple[int, int, int] | None:
    """The (num_frames, height, width) of the global batch that starts at ``position`` (None: no buckets)."""
    if not buckets:
        return None
    return tuple(buckets[random.Random(f"bucket:{seed}:{position}").randrange(len(buckets))])


class ShapesStream(IterableDataset):
    """Example ``i`` is a pure function of (seed, i): iterate from any ``start`` position.

    With several training processes, process ``rank`` of ``world`` reads its slice of each global
    batch: ``batch(position, size)`` counts this process's examples, and the union over ranks is
    exactly what one process reading ``world`` times the batch would see.
    """

    caption_vocabulary = "moving-shapes"  # what models trained on it rewrite prompts into (t2v.text.rewrite)

    def __init__(self, config: ShapesDataConfig, start: int = 0, *, rank: int = 0, world: int = 1) -> None:
        self.config, self.start, self.rank, self.world = config, start, rank, world

    def example(self, index: int, size: tuple[int, int, int] | None = None) -> dict:
        c = self.config
        num_frames, height, width = size or (c.num_frames, c.height, c.width)
        level = 2 if random.Random(f"level:{c.seed}:{index}").random() < c.level2_prob else 1
        ex = make_example(c.seed * 1_000_003 + index, level=level, split=c.split, num_frames=num_frames,
                          height=height, width=width)
        item = {"video": torch.from_numpy(ex.video), "caption": ex.caption}
        if c.labels:
            item["labels"] = object_labels(ex.scene.objects[0])
        if c.negatives:
            rng = random.Random(f"negatives:{c.seed}:{index}")
            item["negatives"] = [describe_scene(s, rng) for s in counterfactual_scenes(ex.scene, rng, c.negatives)]
        return item

    def __iter__(self):
        index = self.start
        while True:
            yield self.example(index)
            index += 1

    def bucket(self, position: int) -> tuple[int, int, int] | None:
        return choose_bucket(self.config.buckets, self.config.seed, position)

    def batch(self, position: int, batch_size: int) -> dict:
        """This process's examples [position, position + batch_size) stacked: video uint8 (B, T, H, W, 3),
        caption list (and labels (B, 4) when the config asks for them). With buckets, all videos of a
        global batch share one size."""
        block, within = divmod(position, batch_size)
        first = (block * self.world + self.rank) * batch_size + within  # index in the global stream
        size = self.bucket(block * self.world * batch_size)
        items = [self.example(first + i, size) for i in range(batch_size)]
        batch = {"video": torch.stack([x["video"] for x in items]), "caption": [x["caption"] for x in items]}
        if self.config.labels:
            batch["labels"] = torch.stack([x["labels"] for x in items])
        if self.config.negatives:
            batch["negatives"] = [x["negatives"] for x in items]
        return batch


def collate(items: list[dict]) -> dict:
    """Stack dataset items into a batch dict (the same layout ``ShapesStream.batch`` returns)."""
    batch = {"video": torch.stack([torch.as_tensor(np.asarray(x["video"])) for x in items]),
             "caption": [x["caption"] for x in items]}
    if "labels" in items[0]:
        batch["labels"] = torch.stack([torch.as_tensor(x["labels"]) for x in items])
    return batch
