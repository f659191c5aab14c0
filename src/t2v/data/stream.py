"""An endless stream of Moving Shapes examples for training: no disk, and addressable by position,
so a resumed run continues with exactly the examples it would have seen."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import IterableDataset

from t2v.data.shapes import Scene, ShapeObject, counterfactual_scenes, describe_scene, make_example
from t2v.data.vocab import COLOURS, HELD_OUT_PAIRS, MOTIONS, PALETTE, SHAPES, SIZES

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
    # share of videos whose colours are turned by a random hue rotation (tokenizer stages only: the caption
    # no longer names the colour); never into a colour the checker reads as a held-out pair's
    recolour: float = 0.0


def object_labels(obj: ShapeObject) -> torch.Tensor:
    """Attribute indices of one object, in ``ATTRIBUTES`` order: (4,) int64."""
    return torch.tensor([values.index(getattr(obj, name)) for name, values in ATTRIBUTES.items()])


def hue_rotation(angle: float) -> np.ndarray:
    """(3, 3) matrix turning RGB colours by ``angle`` radians about the grey axis: black, white and the
    greys stay, and every other colour keeps its distance from that axis (Rodrigues' formula)."""
    k = np.full(3, 1 / math.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def read_colour(rgb: np.ndarray) -> str:
    """The palette colour the checker reads an RGB colour as."""
    from t2v.eval.shapes import classify_pixels  # the checker defines what a colour reads as

    label = int(classify_pixels(np.clip(rgb, 0, 255).round().astype(np.uint8).reshape(1, 1, 1, 3))[0, 0, 0])
    return COLOURS[label - 1] if label else "black"


def recolour_angle(scene: Scene, rng: random.Random, tries: int = 64) -> float:
    """A hue rotation under which no object of ``scene`` reads as a held-out colour-shape pair (0: none found)."""
    for _ in range(tries):
        angle = rng.uniform(0, 2 * math.pi)
        turn = hue_rotation(angle)
        if not any((read_colour(turn @ np.array(PALETTE[o.colour], np.float64)), o.shape) in HELD_OUT_PAIRS
                   for o in scene.objects):
            return angle
    return 0.0


def recolour_video(video: np.ndarray, angle: float) -> np.ndarray:
    """uint8 (T, H, W, 3) with every colour turned by ``angle`` (background black stays black)."""
    turned = video.astype(np.float32) @ hue_rotation(angle).T.astype(np.float32)
    return np.clip(turned, 0, 255).round().astype(np.uint8)


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
        video = ex.video
        if c.recolour and (rng := random.Random(f"recolour:{c.seed}:{index}")).random() < c.recolour:
            video = recolour_video(video, recolour_angle(ex.scene, rng))
        item = {"video": torch.from_numpy(video), "caption": ex.caption}
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
