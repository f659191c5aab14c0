"""The server's engine, free of web frameworks: checks a request against the model and the
server's limits, loads each model once, runs generations one at a time from a bounded queue,
and writes each result (mp4 + contact sheet + the checker's verdict) under a generated name."""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from t2v.errors import T2VError
from t2v.pipelines.base import (
    DEFAULT_MODEL,
    Pipeline,
    bundled_models,
    check_prompt,
    check_seed,
    load_pipeline,
    resolve_model,
)
from t2v.serve.jobs import JobQueue, ResultStore, TimedOut
from t2v.serve.requests import GenerateRequest
from t2v.video import Video

MAX_SEED = 2**32 - 1


@dataclass
class ServeConfig:
    """Where ``t2v serve`` listens and how much work it takes on; every limit is per request."""

    host: str = "127.0.0.1"  # this machine only, unless told otherwise
    port: int = 7860
    max_queue: int = 8  # requests waiting for the model; more get "busy, retry later"
    timeout_s: float = 60.0  # from arrival to answer, waiting included
    keep_minutes: float = 30.0  # generated files are deleted this long after they were written
    threads: int = 2  # torch CPU threads for generation
    output_dir: Path | None = None  # None: a fresh temporary folder, removed on shutdown
    max_frames: int = 48
    max_side_px: int = 128
    max_steps: int = 100
    max_guidance: float = 20.0
    max_story_prompts: int = 4
    max_candidates: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise T2VError(f"port must be 1..65535, got {self.port}")
        for name, option in (("max_queue", "max-queue"), ("timeout_s", "timeout"), ("keep_minutes", "keep-minutes"),
                             ("threads", "threads")):
            if not getattr(self, name) > 0:
                raise T2VError(f"{option} must be positive, got {getattr(self, name)}")


@dataclass
class ModelInfo:
    """What one model takes: the sizes it generates (within the server's limits), its options, stories."""

    name: str
    family: str
    video_shape: tuple[int, int, int]  # (num_frames, height, width) it makes by default
    num_frames: list[int]  # every frame count it takes
    height: list[int]
    width: list[int]
    options: list[str]  # sampling options of the API it takes (steps, guidance, sampler)
    story: bool
    fps: float
    scores: dict = field(default_factory=dict)  # measured summary from its scores.json


@dataclass
class Result:
    """One finished request: files under ``id`` and what the client should see."""

    id: str
    model: str
    prompts: list[str]
    seed: int
    num_frames: int
    height: int
    width: int
    fps: float
    seconds: float  # generation only, not the wait in the queue
    verdicts: list[dict | None]  # the checker's, per prompt; None outside the Moving Shapes vocabulary
    video_path: Path
    sheet_path: Path
    model_prompts: list[str] = field(default_factory=list)  # what the model was given: prompts rewritten into
    # its training captions' words (t2v.text.rewrite), or the prompts themselves

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if not k.endswith("_path")}
        return {**data, "video_url": f"/files/{self.video_path.name}", "sheet_url": f"/files/{self.sheet_path.name}"}


def servable_models() -> dict[str, Path]:
    """Bundled models that make videos from text (not tokenizers or the FVD classifier)."""
    from t2v.checkpoint import read_config
    from t2v.models import model_class

    found = {}
    for name, directory in bundled_models().items():
        family = read_config(directory)["family"]
        if hasattr(model_class(family), "sampling_options"):
            found[name] = directory
    return found


def has_reranker(pipe: Pipeline) -> bool:
    """Whether the pipeline's video-text matcher (for ``candidates``) can be found."""
    try:
        resolve_model(pipe.reranker_name)
    except T2VError:
        return False
    return True


def checker_verdict(frames: np.ndarray, prompt: str) -> dict | None:
    """The checker's attribute verdicts on uint8 (T, H, W, 3) frames, or None when the prompt names
    things outside the Moving Shapes vocabulary (every object needs a colour or a shape it knows)."""
    from t2v.eval.shapes import ATTRIBUTES, judge_video, parse_prompt

    specs = parse_prompt(prompt)
    if not 1 <= len(specs) <= 2 or not all(s.colour or s.shape for s in specs):
        return None
    verdict = judge_video(frames, prompt)
    objects = [{"asked": {a: getattr(o.spec, a) for a in ATTRIBUTES if getattr(o.spec, a)},
                "seen": {a: getattr(o, f"detected_{a}") for a in ATTRIBUTES},
                "right": {a: getattr(o, a) for a in ATTRIBUTES}} for o in verdict.objects]
    return {**{a: getattr(verdict, a) for a in (*ATTRIBUTES, "all_right")}, "objects": objects}


def _accepted(pipe: Pipeline, name: str, candidates: range) -> list[int]:
    """The values of one size (num_frames, height or width) the model takes, asking its own ``check_shape``."""
    values = []
    for value in candidates:
        try:
            pipe.check_shape(**{"num_frames": None, "height": None, "width": None, name: value})
            values.append(value)
        except T2VError:
            pass
    return values


class Service:
    """Bundled text-to-video models behind one queue: ``generate(request) -> Result`` from any thread."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.models = servable_models()
        if not self.models:
            raise T2VError("no text-to-video models found: set T2V_CHECKPOINTS to a folder of checkpoints")
        self.default_model = DEFAULT_MODEL if DEFAULT_MODEL in self.models else next(iter(self.models))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # effective only if torch has not started OpenMP yet
        torch.set_num_threads(config.threads)
        self._pipes: dict[str, Pipeline] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._load_lock = threading.Lock()
        owns_root = config.output_dir is None
        root = Path(tempfile.mkdtemp(prefix="t2v-serve-")) if owns_root else Path(config.output_dir)
        self.store = ResultStore(root, config.keep_minutes * 60, owns_root=owns_root)
        self.jobs = JobQueue(config.max_queue)
        self.info(self.default_model)  # the first visitor should not wait for the load

    def pipeline(self, name: str) -> Pipeline:
        """The shared pipeline of a served model, loaded on first use; only exact bundled names, never paths."""
        if not isinstance(name, str) or name not in self.models:
            raise T2VError(f"unknown model {str(name)[:80]!r}; this server has: {', '.join(self.models)}")
        with self._load_lock:
            if name not in self._pipes:
                self._pipes[name] = load_pipeline(self.models[name])
            return self._pipes[name]

    def info(self, name: str) -> ModelInfo:
        pipe = self.pipeline(name)
        with self._load_lock:
            if name not in self._infos:
                self._infos[name] = self._describe(pipe)
            return self._infos[name]

    def _describe(self, pipe: Pipeline) -> ModelInfo:
        from t2v.checkpoint import read_config
        from t2v.pipelines.base import model_scores

        c = self.config
        return ModelInfo(
            name=pipe.name, family=read_config(pipe.directory)["family"], video_shape=pipe.video_shape,
            num_frames=_accepted(pipe, "num_frames", range(1, c.max_frames + 1)),
            height=_accepted(pipe, "height", range(1, c.max_side_px + 1)),
            width=_accepted(pipe, "width", range(1, c.max_side_px + 1)),
            options=[o for o in ("steps", "guidance", "sampler") if o in getattr(pipe.model, "sampling_options", ())]
            + (["candidates"] if has_reranker(pipe) else []),
            story=hasattr(pipe, "story"), fps=pipe.fps, scores=model_scores(pipe.directory).get("summary", {}))

    def model_infos(self) -> list[ModelInfo]:
        return [self.info(name) for name in self.models]

    def prepare(self, request: GenerateRequest) -> Callable[[], Result]:
        """Check a request completely (one-line T2VError otherwise) and return the job that runs it."""
        pipe = self.pipeline(request.model)
        info = self.info(pipe.name)
        prompts = self._check_prompts(info, request)
        seed = check_seed(request.seed)
        if seed > MAX_SEED:
            raise T2VError(f"seed must be at most {MAX_SEED}, got {seed}")
        shape = self._check_shape(pipe, info, request)
        options = self._check_options(info, request.options)
        if request.story is not None and options.pop("candidates", 1) != 1:
            raise T2VError("candidates reranks single videos; a story is drawn once")
        if request.story is not None:
            def draw() -> Video:
                return pipe.story(prompts, seed=seed, num_frames=shape["num_frames"], **options)
        else:
            def draw() -> Video:
                return pipe(prompts[0], seed=seed, **shape, **options)
        return lambda: self._run(pipe.name, prompts, pipe.rewritten(prompts), seed, draw)

    def _check_prompts(self, info: ModelInfo, request: GenerateRequest) -> list[str]:
        if (request.prompt is None) == (request.story is None):
            raise T2VError('give either "prompt" or "story" (a list of prompts), not both or neither')
        if request.story is not None and not info.story:
            raise T2VError(f"{info.name} cannot follow a story; use a Phenaki model, e.g. phenaki-shapes")
        if request.story is not None and not 1 <= len(request.story) <= self.config.max_story_prompts:
            raise T2VError(f"a story takes 1 to {self.config.max_story_prompts} prompts here, got {len(request.story)}")
        return [check_prompt(p) for p in request.prompts]

    def _check_shape(self, pipe: Pipeline, info: ModelInfo, request: GenerateRequest) -> dict:
        """The model's own check first (its message says what it takes), then this server's limits."""
        shape = dict(num_frames=request.num_frames, height=request.height, width=request.width)
        pipe.check_shape(**shape)
        for name, value in shape.items():
            if value is not None and value not in getattr(info, name):
                limit = self.config.max_frames if name == "num_frames" else self.config.max_side_px
                raise T2VError(f"{name} must be at most {limit} on this server, got {value}")
        return shape

    def _check_options(self, info: ModelInfo, options: dict) -> dict:
        c = self.config
        for name in options:
            if name not in info.options:
                raise T2VError(f"{info.name} does not take {name}; it takes: {', '.join(info.options) or 'no options'}")
        if not 1 <= options.get("steps", 1) <= c.max_steps:
            raise T2VError(f"steps must be 1..{c.max_steps} on this server, got {options['steps']}")
        if not 0 <= options.get("guidance", 0) <= c.max_guidance:
            raise T2VError(f"guidance must be 0..{c.max_guidance:g} on this server, got {options['guidance']}")
        if not 1 <= options.get("candidates", 1) <= c.max_candidates:
            raise T2VError(f"candidates must be 1..{c.max_candidates} on this server, got {options['candidates']}")
        return options

    def _run(self, model: str, prompts: list[str], model_prompts: list[str], seed: int,
             draw: Callable[[], Video]) -> Result:
        """Generate, write the mp4 and contact sheet (each atomically), then judge (in the worker thread)."""
        start = time.perf_counter()
        video = draw()
        seconds = time.perf_counter() - start
        result_id = self.store.new_id()
        paths = [video.save(self.store.path(result_id, suffix)) for suffix in (".mp4", ".png")]
        self.store.add(result_id)
        segments = np.array_split(video.frames, len(prompts))  # a story: one segment per prompt
        verdicts = [checker_verdict(frames, prompt) for frames, prompt in zip(segments, prompts)]
        return Result(result_id, model, prompts, seed, video.num_frames, video.height, video.width, video.fps,
                      round(seconds, 3), verdicts, *paths, model_prompts=model_prompts)

    def generate(self, request: GenerateRequest) -> Result:
        """Check, queue and wait: Busy when the queue is full, TimedOut past ``timeout_s``."""
        deadline = time.monotonic() + self.config.timeout_s
        job = self.prepare(request)
        future = self.jobs.submit(job, deadline)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            if not future.cancel():  # already running: nobody will fetch its files
                future.add_done_callback(self._discard)
            raise TimedOut(f"the video took longer than this server's {self.config.timeout_s:g} s limit; "
                           "try fewer frames or steps, or retry when it is less busy") from None

    def _discard(self, future: concurrent.futures.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.store.discard(future.result().id)

    def close(self) -> None:
        self.jobs.close()
        self.store.close()
