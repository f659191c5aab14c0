"""The Moving Shapes world (spec version 1): a pure function from a seed to a captioned video.

Everything is drawn with hard edges on black, so a video can be checked against its caption
by pixel analysis (see ``t2v.eval.shapes``). Lengths scale with the shorter frame side.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace

import numpy as np

from t2v.data.vocab import (
    COLOURS,
    HELD_OUT_PAIRS,
    MOTIONS,
    PALETTE,
    SHAPES,
    SIZES,
    TRAIN_MOTION_PHRASES,
    TRAIN_SYNONYMS,
)
from t2v.errors import T2VError

WORLD_VERSION = 1
FPS = 8
_DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "still": (0, 0)}


@dataclass(frozen=True)
class ShapeObject:
    """One object: attributes and its start centre in pixels (x right, y down)."""

    colour: str
    shape: str
    size: str
    motion: str
    x0: float
    y0: float


@dataclass(frozen=True)
class Scene:
    """A full description of one video: objects drawn in order (later ones on top)."""

    objects: tuple[ShapeObject, ...]
    num_frames: int = 16
    height: int = 64
    width: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ShapesExample:
    video: np.ndarray  # (T, H, W, 3) uint8
    caption: str
    scene: Scene


def radius_px(size: str, side: int) -> int:
    """Half-extent ``s`` of an object: small 0.08 W, large 0.16 W (W = shorter side)."""
    return round((0.08 if size == "small" else 0.16) * side)


def speed_px(side: int) -> float:
    """Constant speed in pixels per frame: round(0.03 W, 1)."""
    return round(0.03 * side, 1)


def object_centre(obj: ShapeObject, t: int, side: int) -> tuple[int, int]:
    """Integer centre of ``obj`` at frame ``t`` (positions rounded when drawn)."""
    dx, dy = _DIRECTIONS[obj.motion]
    v = speed_px(side)
    return round(obj.x0 + dx * v * t), round(obj.y0 + dy * v * t)


def shape_mask(shape: str, s: int, cx: int, cy: int, height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of a shape with half-extent ``s`` centred at pixel corner (cx, cy)."""
    u = np.arange(width)[None, :] + 0.5 - cx  # pixel centres relative to the object centre
    v = np.arange(height)[:, None] + 0.5 - cy
    if shape == "circle":
        return u**2 + v**2 <= s**2
    if shape == "square":
        return (np.abs(u) < s) & (np.abs(v) < s)
    if shape == "triangle":  # apex up at v = -s, base 2s wide at v = +s
        return (np.abs(v) < s) & (np.abs(u) <= (v + s) / 2)
    raise T2VError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def render_scene(scene: Scene) -> np.ndarray:
    """Draw a scene: (T, H, W, 3) uint8, black background, later objects on top."""
    side = min(scene.height, scene.width)
    video = np.zeros((scene.num_frames, scene.height, scene.width, 3), np.uint8)
    for obj in scene.objects:
        s = radius_px(obj.size, side)
        colour = np.array(PALETTE[obj.colour], np.uint8)
        for t in range(scene.num_frames):
            cx, cy = object_centre(obj, t, side)
            video[t][shape_mask(obj.shape, s, cx, cy, scene.height, scene.width)] = colour
    return video


def _start_range(motion_step: float, s: int, length: int, num_frames: int) -> list[int]:
    """Integer start centres keeping [c - s, c + s] inside [0, length] on every frame."""
    ok = []
    for c in range(s, length - s + 1):
        end = round(c + motion_step * (num_frames - 1))
        if s <= end <= length - s:
            ok.append(c)
    return ok


def _boxes_overlap(a: ShapeObject, b: ShapeObject, side: int) -> bool:
    sa, sb = radius_px(a.size, side), radius_px(b.size, side)
    return abs(a.x0 - b.x0) < sa + sb and abs(a.y0 - b.y0) < sa + sb


def _sample_object(rng: random.Random, colour: str, shape: str, num_frames: int, height: int, width: int) -> ShapeObject:
    side = min(height, width)
    size, motion = rng.choice(SIZES), rng.choice(MOTIONS)
    s, v = radius_px(size, side), speed_px(side)
    dx, dy = _DIRECTIONS[motion]
    xs, ys = _start_range(dx * v, s, width, num_frames), _start_range(dy * v, s, height, num_frames)
    if not xs or not ys:
        raise T2VError(f"a {size} object moving {motion} cannot stay inside {height}x{width} for {num_frames} frames")
    return ShapeObject(colour, shape, size, motion, float(rng.choice(xs)), float(rng.choice(ys)))


def sample_scene(rng: random.Random, *, level: int = 1, split: str = "train", num_frames: int = 16,
                 height: int = 64, width: int = 64) -> Scene:
    """Draw a scene. ``split``: "train" (no held-out pair), "test" (contains one), or "all"."""
    if split not in ("train", "test", "all"):
        raise T2VError(f"split must be train, test or all, got {split!r}")
    if level not in (1, 2):
        raise T2VError(f"level must be 1 or 2, got {level}")
    while True:
        colours = rng.sample(COLOURS, level)
        shapes = [rng.choice(SHAPES) for _ in range(level)]
        pairs = list(zip(colours, shapes))
        has_held_out = any(p in HELD_OUT_PAIRS for p in pairs)
        if split == "train" and has_held_out or split == "test" and not has_held_out:
            continue
        objects = [_sample_object(rng, c, sh, num_frames, height, width) for c, sh in pairs]
        if level == 2 and _boxes_overlap(objects[0], objects[1], min(height, width)):
            continue
        return Scene(tuple(objects), num_frames, height, width)


def describe_object(obj: ShapeObject, rng: random.Random, *, canonical: bool = False,
                    synonyms: dict | None = None, motion_phrases: dict | None = None) -> str:
    """A caption fragment for one object, e.g. ``a large blue square moving right``."""
    synonyms = synonyms or TRAIN_SYNONYMS
    motion_phrases = motion_phrases or TRAIN_MOTION_PHRASES
    if canonical:
        motion = "staying still" if obj.motion == "still" else f"moving {obj.motion}"
        return f"a {obj.size} {obj.colour} {obj.shape} {motion}"
    article = rng.choice(("a", "the"))
    size = "" if rng.random() < 0.25 else rng.choice(synonyms[obj.size]) + " "
    shape = rng.choice(synonyms[obj.shape])
    return f"{article} {size}{obj.colour} {shape} {rng.choice(motion_phrases[obj.motion])}"


def describe_scene(scene: Scene, rng: random.Random, *, canonical: bool | None = None, **words) -> str:
    """Caption a scene; the canonical template is drawn with probability 1/3 unless forced."""
    if canonical is None:
        canonical = rng.random() < 1 / 3
    return " and ".join(describe_object(o, rng, canonical=canonical, **words) for o in scene.objects)


def make_example(seed: int, *, level: int = 1, split: str = "train", num_frames: int = 16,
                 height: int = 64, width: int = 64, canonical: bool | None = None) -> ShapesExample:
    """The world's pure function: the same seed gives the same video and caption anywhere."""
    rng = random.Random(f"moving-shapes-v{WORLD_VERSION}:{seed}:{level}:{split}:{num_frames}:{height}:{width}")
    scene = sample_scene(rng, level=level, split=split, num_frames=num_frames, height=height, width=width)
    return ShapesExample(render_scene(scene), describe_scene(scene, rng, canonical=canonical), scene)


def is_held_out(scene: Scene) -> bool:
    """True when the scene contains a colour-shape pair never seen in training."""
    return any((o.colour, o.shape) in HELD_OUT_PAIRS for o in scene.objects)


def counterfactual_scenes(scene: Scene, rng: random.Random, count: int, *, held_out: bool = False) -> list[Scene]:
    """``count`` scenes that differ from ``scene`` in one attribute of one object (colour, shape, size
    or motion), no two objects sharing a colour: the hard negatives a video-text matcher learns to
    tell apart from the truth. Only with ``held_out`` may a changed object form a held-out colour-shape
    pair (for measuring on the test split; training never sees those pairs)."""
    attributes = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "motion": MOTIONS}
    options = []
    for i, obj in enumerate(scene.objects):
        taken = {o.colour for j, o in enumerate(scene.objects) if j != i}
        for name, values in attributes.items():
            for value in values:
                changed = replace(obj, **{name: value})
                if value != getattr(obj, name) and changed.colour not in taken \
                        and (held_out or (changed.colour, changed.shape) not in HELD_OUT_PAIRS):
                    options.append(replace(scene, objects=scene.objects[:i] + (changed,) + scene.objects[i + 1:]))
    return [options[rng.randrange(len(options))] for _ in range(count)]
