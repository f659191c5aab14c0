"""The Moving Shapes checker: judge a video against its prompt by pixel analysis (spec v1).

Each pixel is background when black is the nearest colour, else the palette colour nearest
in hue (smoothed by a local majority vote). An object is the largest 8-connected region of its colour in each frame (so specks
of noise are ignored); its shape comes from the fill ratio of that region in its bounding box
and where its mass sits (a triangle's is a sixth of its height below the box centre), its size
from the region's area, its motion from the centroid's displacement over the clip.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage  # installed with sentence-transformers, which the MiniLM text encoder needs

from t2v.data.shapes import ShapeObject, describe_object, radius_px
from t2v.data.vocab import (
    COLOURS,
    HELD_OUT_PAIRS,
    MOTION_WORDS,
    MOTIONS,
    PALETTE,
    PARAPHRASE_MOTION_PHRASES,
    PARAPHRASE_SYNONYMS,
    SHAPES,
    SIZES,
    STILL_PHRASES,
    TRAIN_MOTION_PHRASES,
    TRAIN_SYNONYMS,
)
from t2v.errors import T2VError

PROMPT_SETS = ("held_out", "seen", "paraphrase", "two_objects")
ATTRIBUTES = ("colour", "shape", "size", "motion")

STILL_FRACTION = 0.10  # still: centroid moves under 10% of the shorter side over the clip
TRIANGLE_MIN_OFFSET = 1 / 18  # symmetric shapes sit at 0, the smallest drawn triangle at 0.11, large ones 1/6
TRIANGLE_MAX_FILL = 0.75  # triangles fill 0.51-0.6 of their box, discs 0.79-0.89, squares 1.0
SURE_COSINE = 0.98  # palette colours are at most 0.976 alike (yellow, orange); an unsure pixel is a mix (an edge)
MAJORITY_PX = 5  # an unsure pixel takes the colour most sure pixels in this square around it have
MIN_SHARE = 0.05  # two objects: a colour needs this share of the non-background pixels to count as drawn
_AREA_PER_S2 = {"circle": math.pi, "square": 4.0, "triangle": 2.0}  # area / s**2 of each shape


# ----------------------------------------------------------------------------- prompts

@dataclass(frozen=True)
class ObjectSpec:
    """What a prompt asks of one object; ``None`` where the prompt does not say (any value is right)."""

    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    motion: str | None = None


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    """Every word or phrase the parser knows, as a token tuple -> (attribute, value)."""
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    for word, motion in MOTION_WORDS.items():
        table[(word,)] = ("motion", motion)
    for phrase in STILL_PHRASES:
        table[tuple(phrase.split())] = ("motion", "still")
    for phrases in (TRAIN_MOTION_PHRASES, PARAPHRASE_MOTION_PHRASES):
        for motion, texts in phrases.items():
            for text in texts:
                table[tuple(text.split())] = ("motion", motion)
    for synonyms in (TRAIN_SYNONYMS, PARAPHRASE_SYNONYMS):
        for value, words in synonyms.items():
            attribute = "size" if value in SIZES else "shape"
            for word in (value, *words):
                table[tuple(word.split())] = (attribute, value)
    for colour in COLOURS:
        table[(colour,)] = ("colour", colour)
    return table


_PHRASES = _phrase_table()
_LONGEST_PHRASE = max(len(p) for p in _PHRASES)


def _parse_object(tokens: list[str]) -> dict[str, str]:
    """Attributes named in one object phrase; longest phrase wins, the first mention of an attribute wins."""
    found: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        for n in range(min(_LONGEST_PHRASE, len(tokens) - i), 0, -1):
            hit = _PHRASES.get(tuple(tokens[i:i + n]))
            if hit is not None:
                found.setdefault(*hit)
                i += n
                break
        else:
            i += 1  # unknown words are ignored
    return found


def parse_prompt(prompt: str) -> list[ObjectSpec]:
    """The objects a prompt asks for, e.g. ``"a red circle moving left and a big blue box falling"`` -> two specs.

    "and" always separates objects; a part naming neither colour nor shape ("... moving left and
    fast") only fills in what the previous object left unsaid.
    """
    tokens = re.sub(r"[^a-z']+", " ", prompt.lower()).split()
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == "and":
            parts.append([])
        else:
            parts[-1].append(token)
    objects: list[dict[str, str]] = []
    for part in parts:
        found = _parse_object(part)
        if objects and "colour" not in found and "shape" not in found:
            objects[-1] = {**found, **objects[-1]}
        elif found:
            objects.append(found)
    return [ObjectSpec(**o) for o in objects]


# ----------------------------------------------------------------------------- measuring one video

_PALETTE_RGB = np.array([PALETTE[c] for c in COLOURS], np.float32)  # (8, 3)


def classify_pixels(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, H, W) int: 0 for background, 1 + index into COLOURS for a palette colour.

    Background where black is the nearest colour. Elsewhere the palette colour nearest in direction
    (largest cosine), so a dim edge keeps its hue (dim yellow is not green). A pixel whose hue is
    unsure (blurred edges, mp4's half-resolution colour turning them greyish) takes the colour of
    most sure pixels in its 5x5 neighbourhood; pixels of exact palette colours never change.
    """
    x = frames.astype(np.float32)  # (T, H, W, 3)
    dot = x @ _PALETTE_RGB.T  # (T, H, W, 8)
    norm2 = (_PALETTE_RGB**2).sum(1)
    background = (2 * dot < norm2).all(-1)  # |x|^2 < |x - r|^2 for every palette colour r
    cosine = dot / np.sqrt(norm2) / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
    labels = cosine.argmax(-1) + 1
    sure = (cosine.max(-1) >= SURE_COSINE) & ~background
    votes = ndimage.uniform_filter(((labels[..., None] == np.arange(1, len(COLOURS) + 1)) & sure[..., None])
                                   .astype(np.float32), size=(1, MAJORITY_PX, MAJORITY_PX, 1), mode="constant")
    relabel = ~sure & (votes.max(-1) > 0)
    labels[relabel] = votes.argmax(-1)[relabel] + 1
    labels[background] = 0
    return labels


def _largest_regions(mask: np.ndarray) -> np.ndarray:
    """Per frame, keep only the largest 8-connected region of a (T, H, W) mask."""
    out = np.zeros_like(mask)
    for t, frame in enumerate(mask):
        labels, count = ndimage.label(frame, structure=np.ones((3, 3), bool))
        if count:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            out[t] = labels == sizes.argmax()
    return out


@dataclass
class Track:
    """Per-frame measurements of one colour's region; frames where it is absent have area 0."""

    area: np.ndarray  # (T,) pixels
    box: np.ndarray  # (T, 4) y0, x0, y1, x1 inclusive
    centroid: np.ndarray  # (T, 2) x, y in pixels (pixel centres at integer + 0.5)
    fill: np.ndarray  # (T,) area / box area
    offset: np.ndarray  # (T,) (centroid y - box centre y) / box height: + means mass low

    @property
    def present(self) -> np.ndarray:
        return self.area > 0


def measure_region(mask: np.ndarray) -> Track:
    """Measure a (T, H, W) boolean region frame by frame."""
    t_len, h, w = mask.shape
    area = mask.sum((1, 2))
    safe = np.maximum(area, 1)
    rows, cols = mask.any(2), mask.any(1)  # (T, H), (T, W)
    y0, y1 = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    x0, x1 = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    cy = (mask.sum(2) * (np.arange(h) + 0.5)).sum(1) / safe
    cx = (mask.sum(1) * (np.arange(w) + 0.5)).sum(1) / safe
    box_h, box_w = y1 - y0 + 1, x1 - x0 + 1
    fill = area / (box_h * box_w)
    offset = (cy - (y0 + y1 + 1) / 2) / box_h
    return Track(area, np.stack([y0, x0, y1, x1], 1), np.stack([cx, cy], 1), fill, offset)


@functools.lru_cache(maxsize=None)
def disc_fill(box_side: int) -> float:
    """Fill ratio of a disc drawn on pixels with this bounding-box side (0.89 at 6 px, -> pi/4)."""
    u = np.arange(box_side) + 0.5 - box_side / 2
    inside = u[:, None] ** 2 + u[None, :] ** 2 <= (box_side / 2) ** 2
    return float(inside.mean())


def classify_shape(fill: float, offset: float, box_side: int) -> str:
    """Triangle when the mass sits low in a box it half fills; square when fuller than a disc of that size."""
    if offset >= TRIANGLE_MIN_OFFSET and fill <= TRIANGLE_MAX_FILL:
        return "triangle"
    return "square" if fill >= (1 + disc_fill(box_side)) / 2 else "circle"


def classify_size(area: float, shape: str, side: int) -> str:
    """Small or large by area, the threshold halfway (geometrically) between the two for this shape."""
    threshold = _AREA_PER_S2[shape] * radius_px("small", side) * radius_px("large", side)
    return "large" if area >= threshold else "small"


def classify_motion(displacement: tuple[float, float], side: int) -> str:
    """Still under 10% of the shorter side, otherwise the dominant axis and sign (y grows downward)."""
    dx, dy = displacement
    if math.hypot(dx, dy) < STILL_FRACTION * side:
        return "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _clip_displacement(centroid: np.ndarray, frames: np.ndarray, num_frames: int) -> tuple[float, float]:
    """Displacement over the clip: least-squares velocity of the centroid track times (T - 1).

    For constant motion this is the first-to-last displacement; unlike two endpoints it is not
    thrown by one noisy frame or by frames where the object is hidden.
    """
    t = frames.astype(float)
    t = t - t.mean()
    slope = (t[:, None] * (centroid[frames] - centroid[frames].mean(0))).sum(0) / (t**2).sum()
    return float(slope[0] * (num_frames - 1)), float(slope[1] * (num_frames - 1))


def _touching(a: Track, b: Track) -> np.ndarray:
    """Per frame: are both regions there, their boxes within one pixel of each other?"""
    (ay0, ax0, ay1, ax1), (by0, bx0, by1, bx1) = a.box.T, b.box.T
    near = (ay0 <= by1 + 1) & (by0 <= ay1 + 1) & (ax0 <= bx1 + 1) & (bx0 <= ax1 + 1)
    return a.present & b.present & near


# ----------------------------------------------------------------------------- verdicts

@dataclass
class ObjectVerdict:
    """One named object: right or wrong on each attribute, and what was measured (None: not found)."""

    spec: ObjectSpec
    colour: bool
    shape: bool
    size: bool
    motion: bool
    detected_colour: str | None = None
    detected_shape: str | None = None
    detected_size: str | None = None
    detected_motion: str | None = None
    colour_share: float = 0.0  # of the non-background pixels over the clip
    fill_ratio: float | None = None  # median over frames
    mass_offset: float | None = None  # median over frames, in box heights below the box centre
    area_px: float | None = None  # median over frames
    area_fraction: float | None = None  # area_px / (shorter side)**2
    displacement_px: tuple[float, float] | None = None  # (dx, dy) over the clip, y down

    @property
    def all_right(self) -> bool:
        return self.colour and self.shape and self.size and self.motion


@dataclass
class Verdict:
    """A video against its prompt: an attribute is right when it is right for every named object."""

    prompt: str
    objects: list[ObjectVerdict]

    @property
    def colour(self) -> bool:
        return all(o.colour for o in self.objects)

    @property
    def shape(self) -> bool:
        return all(o.shape for o in self.objects)

    @property
    def size(self) -> bool:
        return all(o.size for o in self.objects)

    @property
    def motion(self) -> bool:
        return all(o.motion for o in self.objects)

    @property
    def all_right(self) -> bool:
        return all(o.all_right for o in self.objects)


def _right(asked: str | None, seen: str | None) -> bool:
    return asked is None or asked == seen


def _colour_track(labels: np.ndarray, colour: str) -> Track:
    return measure_region(_largest_regions(labels == 1 + COLOURS.index(colour)))


def colour_centroids(frames: np.ndarray, colour: str) -> np.ndarray:
    """Per frame, the centroid (x, y) in pixels of the largest region of ``colour`` in uint8 frames
    (T, H, W, 3); NaN where the colour is absent. For continuity measures (stories, extension)."""
    track = _colour_track(classify_pixels(frames), colour)
    return np.where(track.present[:, None], track.centroid, np.nan)


def _judge_object(spec: ObjectSpec, colour: str, share: float, track: Track, other: Track | None,
                  side: int) -> ObjectVerdict:
    """Judge one object on its colour's region.

    Frames showing under half its largest area (a speck, or the object mostly hidden) are left
    out. Beside a second object, so are frames where the two touch (one may be partly hidden) while
    two others remain; failing that, shape and size come from the frames showing it largest.
    """
    visible = track.area >= 0.5 * track.area.max()
    motion_frames = shape_frames = np.flatnonzero(visible)
    if other is not None:
        clean = np.flatnonzero(visible & ~_touching(track, other))
        if len(clean) >= 2:
            motion_frames = shape_frames = clean
        else:
            shape_frames = np.flatnonzero(track.area >= 0.95 * track.area.max())
    fill, offset = float(np.median(track.fill[shape_frames])), float(np.median(track.offset[shape_frames]))
    box = track.box[shape_frames]
    box_side = int(np.median(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) + 1))
    area = float(np.median(track.area[shape_frames]))
    shape = classify_shape(fill, offset, box_side)
    size = classify_size(area, shape, side)
    displacement = motion = None
    if len(motion_frames) >= 2:
        displacement = _clip_displacement(track.centroid, motion_frames, len(track.area))
        motion = classify_motion(displacement, side)
    return ObjectVerdict(spec, _right(spec.colour, colour), _right(spec.shape, shape), _right(spec.size, size),
                         motion is not None and _right(spec.motion, motion), colour, shape, size, motion,
                         share, fill, offset, area, area / side**2, displacement)


def judge_video(frames: np.ndarray, prompt: str) -> Verdict:
    """Judge a (T, H, W, 3) uint8 video against a one- or two-object prompt (spec v1 rules)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise T2VError(f"frames must be an array (T, H, W, 3), got shape {frames.shape}")
    specs = parse_prompt(prompt)
    if not 1 <= len(specs) <= 2:
        raise T2VError(f"the checker judges prompts naming one or two objects; found {len(specs)} in {prompt!r}")
    side = min(frames.shape[1:3])
    labels = classify_pixels(frames)
    counts = np.bincount(labels.ravel(), minlength=1 + len(COLOURS))[1:]
    share = dict(zip(COLOURS, (counts / max(counts.sum(), 1)).tolist()))
    ranked = [COLOURS[i] for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    if len(specs) == 1:  # the object is whatever colour was drawn most
        assigned = ranked[:1] or [None]
    else:  # each object takes its own colour if among the two drawn most, else a drawn colour left over
        drawn = [c for c in ranked[:2] if share[c] >= MIN_SHARE]
        assigned = [s.colour if s.colour in drawn else None for s in specs]
        if assigned[0] is not None and assigned[0] == assigned[1]:
            assigned[1] = None
        spare = [c for c in drawn if c not in assigned]
        assigned = [c if c is not None else (spare.pop(0) if spare else None) for c in assigned]
    tracks = [_colour_track(labels, c) if c else None for c in assigned]
    verdicts = []
    for i, (spec, colour, track) in enumerate(zip(specs, assigned, tracks)):
        other = tracks[1 - i] if len(specs) == 2 else None
        verdicts.append(ObjectVerdict(spec, False, False, False, False) if colour is None
                        else _judge_object(spec, colour, share[colour], track, other, side))
    return Verdict(prompt, verdicts)


# ----------------------------------------------------------------------------- scoring many videos

def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate: sensible at 0%, 100% and small n."""
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Report:
    """Rates of videos right on each attribute and on all four, with 95% Wilson intervals."""

    count: int
    right: dict[str, int]  # attribute or "all_right" -> number of videos right
    verdicts: list[Verdict] = field(default_factory=list, repr=False)

    def rate(self, name: str) -> float:
        return self.right[name] / self.count

    def interval(self, name: str) -> tuple[float, float]:
        return wilson_interval(self.right[name], self.count)

    def to_dict(self) -> dict:
        names = (*ATTRIBUTES, "all_right")
        return {"count": self.count, **{n: self.rate(n) for n in names},
                "ci95": {n: list(self.interval(n)) for n in names}}

    def format(self) -> str:
        lines = [f"{'attribute':<10} {'rate':>6}   95% CI", *(
            f"{n.replace('_', ' '):<10} {self.rate(n):>6.1%}   [{self.interval(n)[0]:.1%}, {self.interval(n)[1]:.1%}]"
            for n in (*ATTRIBUTES, "all_right"))]
        return "\n".join([*lines, f"{self.count} videos"])


def score(pairs: Iterable[tuple[np.ndarray, str]]) -> Report:
    """Judge (frames, prompt) pairs and report the rates."""
    verdicts = [judge_video(frames, prompt) for frames, prompt in pairs]
    if not verdicts:
        raise T2VError("nothing to score: give at least one (frames, prompt) pair")
    right = {n: sum(bool(getattr(v, n)) for v in verdicts) for n in (*ATTRIBUTES, "all_right")}
    return Report(len(verdicts), right, verdicts)


def read_prompts(prompts_tsv: str | Path) -> list[tuple[str, str]]:
    """``id<TAB>prompt`` lines; blank lines and ``#`` comments are skipped."""
    path = Path(prompts_tsv)
    if not path.is_file():
        raise T2VError(f"cannot read prompts {path}: no such file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        video_id, tab, prompt = line.partition("\t")
        if not tab or not video_id.strip() or not prompt.strip():
            raise T2VError(f"{path} line {number}: expected 'id<TAB>prompt', got {line!r}")
        items.append((video_id.strip(), prompt.strip()))
    return items


def score_directory(prompts_tsv: str | Path, video_dir: str | Path) -> Report:
    """Score ``video_dir/<id>.{mp4,gif,npy}`` against the prompts in ``prompts_tsv``."""
    video_dir = Path(video_dir)

    def load(video_id: str) -> np.ndarray:
        for suffix in (".mp4", ".gif", ".npy"):
            path = video_dir / f"{video_id}{suffix}"
            if not path.is_file():
                continue
            if suffix == ".npy":
                frames = np.load(path, allow_pickle=False)
                if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                    raise T2VError(f"{path} must hold uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
                return frames
            from t2v.video import read_video

            return read_video(path).frames
        raise T2VError(f"no video for id {video_id!r}: expected {video_dir / video_id}.mp4, .gif or .npy")

    return score((load(video_id), prompt) for video_id, prompt in read_prompts(prompts_tsv))


# ----------------------------------------------------------------------------- prompt sets

def _paraphrase(obj: ShapeObject, rng: random.Random) -> str:
    """Only words never in training captions, and the size always stated."""
    size, shape = rng.choice(PARAPHRASE_SYNONYMS[obj.size]), rng.choice(PARAPHRASE_SYNONYMS[obj.shape])
    return f"{rng.choice(('a', 'the'))} {size} {obj.colour} {shape} {rng.choice(PARAPHRASE_MOTION_PHRASES[obj.motion])}"


def _balanced(combos: list[tuple], n: int, rng: random.Random) -> list[tuple]:
    """n combinations covering all of them as evenly as possible, in a seeded order."""
    out: list[tuple] = []
    while len(out) < n:
        out += rng.sample(combos, len(combos))
    return out[:n]


def prompt_set(name: str, n: int = 100, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (id, prompt) pairs of an evaluation suite, the same for the same seed (see PROMPT_SETS)."""
    if name not in PROMPT_SETS:
        raise T2VError(f"unknown prompt set {name!r}; choose one of {', '.join(PROMPT_SETS)}")
    if n < 1:
        raise T2VError(f"n must be at least 1, got {n}")
    rng = random.Random(f"t2v-prompt-set:{name}:{seed}")
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    seen = [p for p in pairs if p not in HELD_OUT_PAIRS]
    held_out = sorted(HELD_OUT_PAIRS)

    def obj(colour: str, shape: str, size: str, motion: str) -> ShapeObject:
        return ShapeObject(colour, shape, size, motion, 0.0, 0.0)

    if name == "two_objects":
        prompts = []
        for _ in range(n):
            (c1, s1), (c2, s2) = rng.sample(seen, 2)
            while c2 == c1:
                c2, s2 = rng.choice(seen)
            canonical = rng.random() < 1 / 3
            prompts.append(" and ".join(
                describe_object(obj(c, s, rng.choice(SIZES), rng.choice(MOTIONS)), rng, canonical=canonical)
                for c, s in ((c1, s1), (c2, s2))))
    else:
        pool = {"held_out": held_out, "seen": seen, "paraphrase": pairs}[name]
        combos = [(c, s, size, m) for c, s in pool for size in SIZES for m in MOTIONS]
        describe = {"held_out": lambda o: describe_object(o, rng, canonical=True),
                    "seen": lambda o: describe_object(o, rng),
                    "paraphrase": lambda o: _paraphrase(o, rng)}[name]
        prompts = [describe(obj(*combo)) for combo in _balanced(combos, n, rng)]
    return [(f"{name}-{i:04d}", p) for i, p in enumerate(prompts)]
