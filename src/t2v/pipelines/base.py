"""The generic text-to-video pipeline: validates a request, seeds it, calls the family's
``generate`` and wraps the frames in a ``Video``. Families with extra modes subclass it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from t2v import DEFAULT_MODEL
from t2v.checkpoint import load_model, read_config
from t2v.errors import T2VError
from t2v.hardware import bf16_is_fast
from t2v.video import Video, read_image

DEFAULT_RERANKER = "matcher-shapes"  # bundled video-text matcher that picks the best of several candidates
MAX_PROMPT_CHARS = 1000
MAX_CANDIDATES = 16
CANDIDATE_SEED_STRIDE = 1_000_003  # candidate j of the video drawn with seed s uses seed s + j * stride
PRECISIONS = ("auto", "float32", "bf16")
CAPTIONS_KEY = "captions"  # config.json: the caption vocabulary the model was trained on (e.g. "moving-shapes")


def bundled_dir() -> Path:
    """Where bundled checkpoints live: $T2V_CHECKPOINTS, else the repository's checkpoints/ folder."""
    env = os.environ.get("T2V_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "checkpoints"


def bundled_models() -> dict[str, Path]:
    """Bundled model name -> checkpoint directory."""
    root = bundled_dir()
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / "config.json").is_file()}


def resolve_model(name_or_dir: str | os.PathLike) -> Path:
    """A bundled model name or a checkpoint directory -> the directory (one-line error otherwise)."""
    bundled = bundled_models()
    if str(name_or_dir) in bundled:
        return bundled[str(name_or_dir)]
    path = Path(name_or_dir)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    known = ", ".join(bundled) or "none found"
    raise T2VError(f"unknown model {str(name_or_dir)!r}: give a bundled name ({known}) or a checkpoint directory")


def model_scores(directory: Path) -> dict:
    """The measured scores stored beside a checkpoint (``scores.json``), or {}."""
    path = Path(directory) / "scores.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise T2VError("the prompt is empty: describe the video, e.g. 'a red circle moving left'")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise T2VError(f"the prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return prompt.strip()


def check_seed(seed: int | None) -> int:
    """A given seed (must be >= 0), or a random one."""
    seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else seed
    if seed < 0:
        raise T2VError(f"seed must be a non-negative integer, got {seed}")
    return seed


def check_candidates(candidates: int) -> int:
    if not isinstance(candidates, int) or not 1 <= candidates <= MAX_CANDIDATES:
        raise T2VError(f"candidates must be an integer from 1 to {MAX_CANDIDATES}, got {candidates!r}")
    return candidates


def candidate_generators(seeds: list[int], candidates: int) -> list[torch.Generator]:
    """Generators for ``candidates`` draws of each seed, grouped by seed: candidate 0 is the draw
    without reranking, so ``candidates=1`` gives exactly the video a plain call gives."""
    return [torch.Generator().manual_seed(s + j * CANDIDATE_SEED_STRIDE) for s in seeds for j in range(candidates)]


def load_reranker(name_or_dir: str | os.PathLike = DEFAULT_RERANKER, *, device: str | torch.device = "cpu"):
    """The video-text matcher that reranks candidates: a bundled name or a checkpoint directory."""
    directory = resolve_model(name_or_dir)
    family = read_config(directory)["family"]
    if family != "matcher":
        raise T2VError(f"{directory} holds a {family} model, not a video-text matcher (family 'matcher')")
    return load_model(directory, device=device).eval()


def resolve_precision(precision: str, model: torch.nn.Module) -> str:
    """"float32" or "bf16". "auto" is bf16 for families where bfloat16 sampling was measured to be
    faster at the same checker rate (``bf16_sampling``), on hardware with bfloat16 instructions."""
    if precision not in PRECISIONS:
        raise T2VError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    device = next(model.parameters()).device
    return "bf16" if getattr(model, "bf16_sampling", False) and bf16_is_fast(device) else "float32"


def resolve_rewrite(rewrite: str | None, directory: Path | None) -> str | None:
    """The caption vocabulary prompts are rewritten into: "auto" is the one the checkpoint's config
    names (none if it names none), "off" or None is none, any other value names one."""
    if rewrite == "auto":
        return read_config(directory).get(CAPTIONS_KEY) if directory is not None else None
    return None if rewrite in (None, "off") else rewrite


class Pipeline:
    """``pipe(prompt, seed=..., num_frames=..., height=..., width=...) -> Video`` for one loaded model.

    With ``rewrite`` (a caption vocabulary, see ``t2v.text.rewrite``) each prompt is first rewritten
    into the words of the model's training captions; ``pipe.last_rewrites`` says what changed."""

    def __init__(self, model: torch.nn.Module, *, name: str = "model", directory: Path | None = None,
                 precision: str = "float32", reranker: str | os.PathLike = DEFAULT_RERANKER,
                 rewrite: str | None = None) -> None:
        self.model, self.name, self.directory = model.eval(), name, directory
        self.precision = resolve_precision(precision, model)
        self.reranker_name, self._reranker = reranker, None
        self.rewriter = None
        if rewrite is not None:
            from t2v.text.rewrite import load_rewriter

            self.rewriter = load_rewriter(rewrite)
        self.last_rewrites: list[tuple[str, str]] = []

    def rewritten(self, prompts: list[str]) -> list[str]:
        """What the model is given for each (checked) prompt: its rewrite where the pipeline rewrites."""
        return prompts if self.rewriter is None else [self.rewriter(p) for p in prompts]

    def prepare_prompts(self, prompts: list[str]) -> list[str]:
        """Checked prompts, rewritten into the training captions' words where the pipeline rewrites;
        ``last_rewrites`` keeps the (prompt, rewrite) pairs that changed."""
        prompts = [check_prompt(p) for p in prompts]
        given = self.rewritten(prompts)
        self.last_rewrites = [(p, g) for p, g in zip(prompts, given) if g != p]
        return given

    @property
    def reranker(self):
        """The video-text matcher, loaded the first time candidates are reranked."""
        if self._reranker is None:
            self._reranker = load_reranker(self.reranker_name, device=next(self.model.parameters()).device)
        return self._reranker

    def best_candidates(self, frames: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Frames (B, N, T, H, W, 3), N candidates per prompt -> the reranker's best match of each (B, T, H, W, 3)."""
        b, n = frames.shape[:2]
        if n == 1:
            return frames[:, 0]
        scores = self.reranker.score(frames.flatten(0, 1), [p for p in prompts for _ in range(n)])  # (B N,)
        return frames[torch.arange(b), scores.view(b, n).argmax(1)]

    def sampling_precision(self):
        """The context that samples at ``self.precision``: bfloat16 autocast, or float32 as stored."""
        if self.precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast(next(self.model.parameters()).device.type, dtype=torch.bfloat16)

    @property
    def video_shape(self) -> tuple[int, int, int]:
        """(num_frames, height, width) this model generates."""
        return self.model.video_shape

    @property
    def fps(self) -> float:
        return float(getattr(self.model, "fps", 8.0))

    def check_shape(self, num_frames: int | None, height: int | None, width: int | None) -> None:
        """Fixed-size families accept only their trained shape; say which one."""
        t, h, w = self.video_shape
        for name, value, allowed in (("num_frames", num_frames, t), ("height", height, h), ("width", width, w)):
            if value is not None and value != allowed:
                raise T2VError(f"{name} must be {allowed} for {self.name} (a fixed-size model), got {value}")

    def check_options(self, options: dict) -> None:
        """Sampling options must be ones the family's ``generate`` takes (``sampling_options``)."""
        known = getattr(self.model, "sampling_options", ())
        for name in options:
            if name not in known:
                raise T2VError(f"{self.name} does not take the option {name!r}; it takes: {', '.join(known) or 'none'}")

    def model_options(self, num_frames: int | None, height: int | None, width: int | None) -> dict:
        """Options for the family's ``generate`` that follow from a requested size (none: fixed size)."""
        return {}

    def first_frame_tensor(self, image, size: tuple[int | None, int | None] = (None, None)) -> torch.Tensor:
        """A path or an (H, W, 3) uint8 array -> (1, H, W, 3), at ``size`` or the model's default size."""
        _, h, w = self.video_shape
        h, w = size[0] or h, size[1] or w
        if isinstance(image, (str, os.PathLike)):
            image = read_image(image, size=(h, w))
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.shape != (h, w, 3):
            raise T2VError(f"first_frame must be uint8 ({h}, {w}, 3) or an image file, got {image.dtype} {image.shape}")
        return torch.tensor(image)[None]  # a copy: the array may be read-only

    def __call__(self, prompt: str, *, seed: int | None = None, num_frames: int | None = None,
                 height: int | None = None, width: int | None = None, **options) -> Video:
        return self.generate_batch([prompt], seed=seed, num_frames=num_frames, height=height, width=width, **options)[0]

    @torch.no_grad()
    def generate_batch(self, prompts: list[str], *, seed: int | None = None, num_frames: int | None = None,
                       height: int | None = None, width: int | None = None, batch_size: int = 8,
                       candidates: int = 1, progress: bool = False, **options) -> list[Video]:
        """One video per prompt; prompt i is drawn with seed ``seed + i``, so results do not depend on batching.

        ``candidates`` N > 1 draws N videos per prompt and keeps the one the video-text matcher
        (``reranker``) finds closest to the prompt; ``batch_size`` counts videos drawn at once."""
        prompts = self.prepare_prompts(prompts)
        if not prompts:
            raise T2VError("no prompts given")
        self.check_options(options)
        self.check_shape(num_frames, height, width)
        seed, candidates = check_seed(seed), check_candidates(candidates)
        videos = []
        per_chunk = max(1, batch_size // candidates)
        starts = range(0, len(prompts), per_chunk)
        for start in tqdm(starts, desc=self.name, disable=not progress):
            chunk = prompts[start:start + per_chunk]
            frames = self.generate_candidates(chunk, seed + start, candidates, num_frames=num_frames, height=height,
                                              width=width, **options)
            videos += [Video(f.numpy(), fps=self.fps) for f in self.best_candidates(frames, chunk)]
        return videos

    @torch.no_grad()
    def generate_candidates(self, prompts: list[str], seed: int, candidates: int, *, num_frames: int | None = None,
                            height: int | None = None, width: int | None = None, **options) -> torch.Tensor:
        """``candidates`` videos for each of the (checked) prompts, prompt i drawn from seed ``seed + i``:
        uint8 (B, N, T, H, W, 3), one batch through the model."""
        generators = candidate_generators([seed + i for i in range(len(prompts))], candidates)
        with self.sampling_precision():
            frames = self.model.generate([p for p in prompts for _ in range(candidates)], generators=generators,
                                         **self.model_options(num_frames, height, width), **options)  # (B N, T, H, W, 3)
        return frames.reshape(len(prompts), candidates, *frames.shape[1:])


def load_pipeline(name_or_dir: str | os.PathLike = DEFAULT_MODEL, *, device: str = "cpu",
                  precision: str = "auto", reranker: str | os.PathLike = DEFAULT_RERANKER,
                  rewrite: str | None = "auto") -> Pipeline:
    """Load a bundled model by name, or a checkpoint directory, as a ready pipeline sampling at
    ``precision``: "float32", "bf16" (autocast) or "auto" (see ``resolve_precision``). ``reranker``
    names the video-text matcher used when a call asks for several ``candidates``; ``rewrite``
    the caption vocabulary prompts are rewritten into ("auto": the checkpoint's; "off": none)."""
    directory = resolve_model(name_or_dir)
    family = read_config(directory)["family"]
    from t2v.pipelines import pipeline_class

    return pipeline_class(family)(load_model(directory, device=device), name=directory.name, directory=directory,
                                  precision=precision, reranker=reranker,
                                  rewrite=resolve_rewrite(rewrite, directory))
