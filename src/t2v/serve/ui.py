"""The page of ``t2v serve`` (Gradio): generate one video, or compare models on one prompt.

Every click goes through the same ``Service`` as the JSON API: the same checks, queue and limits.
"""

from __future__ import annotations

import gradio as gr

from t2v.errors import T2VError
from t2v.eval.shapes import ATTRIBUTES
from t2v.pipelines.base import MAX_PROMPT_CHARS
from t2v.serve.requests import GenerateRequest
from t2v.serve.service import MAX_SEED, ModelInfo, Result, Service

EXAMPLE_PROMPT = "a large red circle moving left"
VIDEO_HEIGHT_PX = 320
CSS = "video, #result-sheet img { image-rendering: pixelated; }"  # 64-pixel videos: sharp pixels, not blur
INTRO = ("# t2v: text to video\nSmall models trained on the Moving Shapes world. Prompts name a colour, shape, "
         "size and motion, e.g. *a small blue square moving up*; the checker then says what it sees.")
API_HELP = """Beside this page the server answers JSON:

```
curl -s http://HOST/models
curl -s -X POST http://HOST/generate -H 'Content-Type: application/json' \\
     -d '{"prompt": "a red circle moving left", "model": "videogpt-shapes", "seed": 1}'
curl -s -o video.mp4 http://HOST/files/<id>.mp4     # the video_url of the answer
```

Fields: `prompt` or `story` (a list of prompts), `model`, `seed`, `num_frames`, `height`, `width`, `steps`,
`guidance`, `sampler`, `candidates` (best of N by the video-text matcher). Errors are `{"error": "..."}`; 503 means busy, retry later."""


def verdict_markdown(prompt: str, verdict: dict | None) -> str:
    """The checker's verdict as a line and a table: what it saw of each attribute, against what was asked."""
    if verdict is None:
        return f"*“{prompt}”* is outside the Moving Shapes vocabulary: the checker does not judge it."
    wrong = [a for a in ATTRIBUTES if not verdict[a]]
    rows = ["| object | " + " | ".join(ATTRIBUTES) + " |", "|---" * (1 + len(ATTRIBUTES)) + "|"]
    for number, found in enumerate(verdict["objects"], start=1):
        rows.append(f"| {number} | " + " | ".join(_cell(found, a) for a in ATTRIBUTES) + " |")
    summary = "all right" if not wrong else "wrong on " + ", ".join(wrong)
    return f"Checker on *“{prompt}”*: **{summary}**\n\n" + "\n".join(rows)


def _cell(found: dict, attribute: str) -> str:
    seen = found["seen"][attribute] or "not found"
    if attribute not in found["asked"]:
        return f"· {seen}"
    return f"✓ {seen}" if found["right"][attribute] else f"✗ {seen} (asked {found['asked'][attribute]})"


def rewrite_note(result: Result) -> list[str]:
    """A line per prompt the model was given rewritten into its training captions' words."""
    return [f"Given to the model as *“{given}”* (rewritten into its training captions' words)."
            for prompt, given in zip(result.prompts, result.model_prompts) if given != prompt]


def describe(result: Result) -> str:
    head = (f"**{result.model}**: {result.num_frames} frames of {result.height}×{result.width} at {result.fps:g} fps, "
            f"seed {result.seed}, {result.seconds:.2f} s")
    return "\n\n".join([head, *rewrite_note(result),
                         *(verdict_markdown(p, v) for p, v in zip(result.prompts, result.verdicts))])


def size_updates(info: ModelInfo) -> list:
    """Story box, size pickers and steps for a model: shown only where it has a choice."""
    pickers = [gr.update(choices=values, value=default, visible=len(values) > 1)
               for values, default in zip((info.num_frames, info.height, info.width), info.video_shape)]
    steps = gr.update(visible="steps" in info.options, value=None)
    return [gr.update(visible=info.story, value=False), *pickers, steps]


def _number(value) -> int | None:
    return None if value is None or value == "" else int(value)


def build_ui(service: Service, *, delete_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """The page: a Generate tab, a Compare tab (one prompt, several models, seconds per video) and API help."""
    names = [service.default_model, *(n for n in service.models if n != service.default_model)]
    with gr.Blocks(title="t2v", analytics_enabled=False, delete_cache=delete_cache) as page:
        gr.Markdown(INTRO)
        with gr.Tab("Generate"):
            generate_tab(service, names)
        with gr.Tab("Compare"):
            compare_tab(service, names)
        with gr.Tab("API"):
            gr.Markdown(API_HELP)
    return page


def generate_tab(service: Service, names: list[str]) -> None:
    """Model, prompt (or story), seed and the sizes/steps the model takes -> video, verdict, contact sheet."""
    first = service.info(names[0])

    def generate(model, prompt, story, seed, num_frames, height, width, steps, candidates):
        lines = [line for line in (prompt or "").splitlines() if line.strip()]
        best_of = _number(candidates)
        request = GenerateRequest(model=model, prompt=None if story else prompt, story=tuple(lines) if story else None,
                                  seed=_number(seed), num_frames=_number(num_frames), height=_number(height),
                                  width=_number(width), steps=_number(steps) or None,
                                  candidates=None if story or best_of == 1 else best_of)
        try:
            result = service.generate(request)
        except T2VError as e:
            raise gr.Error(str(e)) from None
        return str(result.video_path), str(result.sheet_path), describe(result)

    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(names, value=first.name, label="Model", elem_id="model")
            prompt = gr.Textbox(EXAMPLE_PROMPT, label="Prompt", lines=2, max_length=MAX_PROMPT_CHARS, elem_id="prompt")
            story = gr.Checkbox(label="Story: one prompt per line, followed in turn", visible=first.story)
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
            with gr.Row():
                sizes = [gr.Dropdown(values, value=default, label=label, visible=len(values) > 1)
                         for label, values, default in zip(("Frames", "Height", "Width"),
                                                           (first.num_frames, first.height, first.width),
                                                           first.video_shape)]
            # an empty Number reaches the server as 0: 0 (or empty) means the model's default
            steps = gr.Number(None, label="Steps (0 or empty: the model's default)", precision=0, minimum=0,
                              maximum=service.config.max_steps, visible="steps" in first.options)
            candidates = gr.Number(1, label="Candidates (best of N, picked by the video-text matcher)", precision=0,
                                   minimum=1, maximum=service.config.max_candidates,
                                   visible="candidates" in first.options)
            button = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column():
            video = gr.Video(label="Video", elem_id="result-video", autoplay=True, loop=True, interactive=False,
                             height=VIDEO_HEIGHT_PX)
            about = gr.Markdown(elem_id="result-info")
            sheet = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="result-sheet")
    model.change(lambda name: size_updates(service.info(name)), model, [story, *sizes, steps])
    button.click(generate, [model, prompt, story, seed, *sizes, steps, candidates], [video, sheet, about],
                 concurrency_limit=None)  # the service's queue decides who waits


def compare_tab(service: Service, names: list[str]) -> None:
    """One prompt through each chosen model in turn; each shows its video, seconds per video and verdict."""

    def compare(prompt, seed, chosen):
        shown = {name: (None, "not chosen") for name in names}
        for name in [n for n in names if n in chosen]:
            try:
                result = service.generate(GenerateRequest(model=name, prompt=prompt, seed=_number(seed)))
                shown[name] = (str(result.video_path), "\n\n".join([f"**{result.seconds:.2f} s per video**",
                               *rewrite_note(result), verdict_markdown(result.prompts[0], result.verdicts[0])]))
            except T2VError as e:
                shown[name] = (None, f"error: {e}")
            yield [part for video_and_text in shown.values() for part in video_and_text]

    prompt = gr.Textbox(EXAMPLE_PROMPT, label="Prompt", max_length=MAX_PROMPT_CHARS)
    with gr.Row():
        seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
        chosen = gr.CheckboxGroup(names, value=names, label="Models")
    button = gr.Button("Compare", variant="primary", elem_id="compare")
    outputs = []
    with gr.Row():
        for name in names:
            with gr.Column():
                outputs += [gr.Video(label=name, autoplay=True, loop=True, interactive=False, height=VIDEO_HEIGHT_PX),
                            gr.Markdown()]
    button.click(compare, [prompt, seed, chosen], outputs, concurrency_limit=None)
