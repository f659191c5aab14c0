"""What a client may ask for, and the JSON body that asks for it (one-line errors for anything else)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

from t2v.errors import T2VError
from t2v.pipelines.base import DEFAULT_MODEL

MAX_BODY_BYTES = 64 * 1024  # a story of a few 1000-character prompts fits many times over
EXAMPLE = '{"prompt": "a red circle moving left", "seed": 1}'


@dataclass(frozen=True)
class GenerateRequest:
    """One video: a ``prompt``, or a ``story`` of prompts followed in turn (models that tell stories)."""

    prompt: str | None = None
    story: tuple[str, ...] | None = None
    model: str = DEFAULT_MODEL
    seed: int | None = None  # None: a random one, reported with the result
    num_frames: int | None = None  # None: the model's own size
    height: int | None = None
    width: int | None = None
    steps: int | None = None  # sampling options, where the model takes them
    guidance: float | None = None
    sampler: str | None = None
    candidates: int | None = None  # best of N, picked by the video-text matcher

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if self.story is None else list(self.story)

    @property
    def options(self) -> dict:
        """The sampling options that were given, for the pipeline's ``**options``."""
        return {k: v for k, v in (("steps", self.steps), ("guidance", self.guidance), ("sampler", self.sampler),
                                  ("candidates", self.candidates)) if v is not None}


_INTEGERS = ("seed", "num_frames", "height", "width", "steps", "candidates")
_STRINGS = ("prompt", "model", "sampler")


def parse_request(body: bytes) -> GenerateRequest:
    """A JSON object body -> ``GenerateRequest``; wrong JSON, fields or types raise a one-line T2VError."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise T2VError(f"the body must be a JSON object, e.g. {EXAMPLE}") from None
    if not isinstance(payload, dict):
        raise T2VError(f"the body must be a JSON object, e.g. {EXAMPLE}")
    known = [f.name for f in fields(GenerateRequest)]
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise T2VError(f"unknown field {unknown[0][:40]!r}; known fields: {', '.join(known)}")
    values = {name: _checked(name, value) for name, value in payload.items() if value is not None}
    if "story" in values:
        values["story"] = tuple(values["story"])
    return GenerateRequest(**values)


def _checked(name: str, value):
    """``value`` if it has the JSON type field ``name`` needs (true/false are not numbers here)."""
    if name in _INTEGERS and (isinstance(value, bool) or not isinstance(value, int)):
        raise T2VError(f"{name} must be an integer, got {json.dumps(value)[:40]}")
    if name in _STRINGS and not isinstance(value, str):
        raise T2VError(f"{name} must be a string, got {json.dumps(value)[:40]}")
    if name == "guidance" and not _finite_number(value):
        raise T2VError(f"guidance must be a number, got {json.dumps(value)[:40]}")
    if name == "story" and (not isinstance(value, list) or not all(isinstance(p, str) for p in value)):
        raise T2VError('story must be a list of prompts, e.g. ["a red circle moving left", "the red circle moving up"]')
    return value


def _finite_number(value) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False
