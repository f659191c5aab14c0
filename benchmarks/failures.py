"""Where a bundled model goes wrong: confusion matrices of what the checker asked against what it
found, the same for the model's own tokenizer on real videos of those prompts (the ceiling), and a
contact sheet of failed videos.

    python benchmarks/failures.py --model videogpt-shapes -n 100
    # -> benchmarks/results/failures_videogpt-shapes.{json,md,png} and failures_videogpt-shapes_sheet.png

Prompts are the evaluation's one-object sets (seen and held-out pairs, seed 0: the videos of
``t2v eval MODEL --suite shapes``). The ceiling reconstructs a rendered video of each prompt (what it
leaves open drawn at random) through the model's tokenizer and judges it against the prompt with the
same checker: a shape the tokenizer cannot draw is no fault of the prior.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from plots import pyplot

from t2v import load_pipeline
from t2v.data.shapes import Scene, ShapeObject, render_scene, sample_scene
from t2v.data.vocab import COLOURS, MOTIONS, SHAPES
from t2v.eval.run import tokenizer_of
from t2v.eval.shapes import judge_video, parse_prompt, prompt_set

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NONE = "none"  # nothing of any colour found
VALUES = {"shape": list(SHAPES), "colour": list(COLOURS), "motion": list(MOTIONS)}
SHEET_FRAMES = (0, 5, 10, 15)


def judged(videos: list[np.ndarray], prompts: list[str]) -> list[dict]:
    """Asked and detected attributes of each one-object video."""
    rows = []
    for frames, prompt in zip(videos, prompts):
        o = judge_video(frames, prompt).objects[0]
        rows.append({"prompt": prompt, "right": o.all_right,
                     **{f"asked_{a}": getattr(o.spec, a) for a in VALUES},
                     **{f"found_{a}": getattr(o, f"detected_{a}") or NONE for a in VALUES},
                     "fill": o.fill_ratio, "offset": o.mass_offset})
    return rows


def confusion(rows: list[dict], attribute: str) -> dict[str, dict[str, int]]:
    """{asked: {found: count}} over the rows that name ``attribute``."""
    counts = Counter((r[f"asked_{attribute}"], r[f"found_{attribute}"]) for r in rows if r[f"asked_{attribute}"])
    return {a: {f: counts[a, f] for f in VALUES[attribute] + [NONE] if counts[a, f]} for a in VALUES[attribute]}


def real_video(prompt: str, index: int, shape: tuple[int, int, int]) -> np.ndarray:
    """A rendered video of exactly what a one-object prompt asks (attributes it leaves open drawn at random)."""
    spec = parse_prompt(prompt)[0]
    rng = random.Random(f"failures:{index}:{prompt}")
    t, h, w = shape
    while True:  # a scene of the asked size and motion (so its start keeps it in frame), recoloured and reshaped
        obj = sample_scene(rng, split="all", num_frames=t, height=h, width=w).objects[0]
        if (spec.size or obj.size) == obj.size and (spec.motion or obj.motion) == obj.motion:
            break
    obj = ShapeObject(spec.colour, spec.shape, obj.size, obj.motion, obj.x0, obj.y0)
    return render_scene(Scene((obj,), t, h, w))


@torch.no_grad()
def ceiling_rows(model, prompts: list[str], shape: tuple[int, int, int]) -> list[dict]:
    tokenizer = tokenizer_of(model)
    real = np.stack([real_video(p, i, shape) for i, p in enumerate(prompts)])
    recon = np.concatenate([tokenizer.reconstruct(torch.from_numpy(real[i:i + 16])).numpy()
                            for i in range(0, len(real), 16)])
    return judged(list(recon), prompts)


def rate(rows: list[dict], attribute: str | None = None) -> float:
    ok = [r["right"] if attribute is None else r[f"asked_{attribute}"] in (None, r[f"found_{attribute}"]) for r in rows]
    return float(np.mean(ok))


def markdown(model: str, results: dict, n: int) -> str:
    lines = [f"Failures of `{model}` (one-object prompt sets, n={n} each, seed 0). Each cell counts the videos asked "
             "for the row's value in which the checker found the column's; the ceiling row judges the model's "
             "tokenizer reconstructing rendered videos of the same prompts.", ""]
    for name, res in results.items():
        lines += [f"### {name}", "", "| | shape right | colour right | motion right | all right |", "| --- | --- | --- | --- | --- |"]
        for who in ("generated", "ceiling"):
            rows = res[who]["rows"]
            lines.append(f"| {who} | {rate(rows, 'shape'):.0%} | {rate(rows, 'colour'):.0%} | {rate(rows, 'motion'):.0%} | "
                         f"{rate(rows):.0%} |")
        for attribute, who in (("shape", "generated"), ("shape", "ceiling"), ("colour", "generated"),
                               ("colour", "ceiling"), ("motion", "generated")):
            lines += ["", f"{attribute.capitalize()}, {who} (rows asked, columns found):", "",
                      *matrix_table(res[who]["confusion"][attribute], VALUES[attribute])]
        lines.append("")
    lines.append(f"Command: `python benchmarks/failures.py --model {model} -n {n}`.")
    return "\n".join(lines) + "\n"


def matrix_counts(matrix: dict[str, dict[str, int]], values: list[str]) -> list[list[int]]:
    """A confusion dict as rows (asked, in ``values`` order) of counts (found: ``values``, then none)."""
    return [[matrix[a].get(f, 0) for f in [*values, NONE]] for a in values]


def matrix_table(matrix: dict[str, dict[str, int]], values: list[str]) -> list[str]:
    found = [*values, NONE]
    return ["| asked | " + " | ".join(found) + " |", "|" + " --- |" * (len(found) + 1),
            *(f"| {a} | " + " | ".join(map(str, counts)) + " |" for a, counts in zip(values, matrix_counts(matrix, values)))]


def plot_confusions(results: dict, path: Path) -> None:
    """One shape-confusion heat map per prompt set and source (generated, ceiling)."""
    plt = pyplot()
    panels = [(name, who) for name in results for who in ("generated", "ceiling")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    found = [*SHAPES, NONE]
    for ax, (name, who) in zip(axes[0], panels):
        grid = np.array(matrix_counts(results[name][who]["confusion"]["shape"], VALUES["shape"]))
        ax.imshow(grid, cmap="Blues")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v < grid.max() / 2 else "white")
        ax.set_xticks(range(len(found)), found, fontsize=8)
        ax.set_yticks(range(len(SHAPES)), SHAPES, fontsize=8)
        ax.set_xlabel("found")
        ax.set_ylabel("asked")
        ax.set_title(f"{name}: {who}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def failure_sheet(videos: list[np.ndarray], rows: list[dict], path: Path, *, limit: int = 12, scale: int = 2) -> None:
    """Frames 0, 5, 10, 15 of the first ``limit`` failed videos, each under its prompt and what was found."""
    failed = [(v, r) for v, r in zip(videos, rows) if not r["right"]][:limit]
    if not failed:
        return
    t, h, w, _ = failed[0][0].shape
    frames = [f for f in SHEET_FRAMES if f < t]
    tile_w, text_h = w * scale, 26
    sheet = Image.new("RGB", (len(frames) * (tile_w + 2), len(failed) * (h * scale + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (video, r) in enumerate(failed):
        y = i * (h * scale + text_h)
        draw.text((2, y + 1), r["prompt"][:60], fill="black")
        draw.text((2, y + 13), f"found {r['found_colour']} {r['found_shape']} {r['found_motion']} "
                               f"(fill {r['fill'] or 0:.2f})", fill="firebrick")
        for j, f in enumerate(frames):
            tile = Image.fromarray(video[f]).resize((tile_w, h * scale), Image.NEAREST)
            sheet.paste(tile, (j * (tile_w + 2), y + text_h))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videogpt-shapes")
    parser.add_argument("-n", type=int, default=100, help="prompts per set")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision="float32")  # as `t2v eval` measures
    results, sheet_videos, sheet_rows = {}, [], []
    for name in ("seen", "held_out"):
        prompts = [p for _, p in prompt_set(name, n=args.n, seed=0)]
        videos = [v.frames for v in pipe.generate_batch(prompts, seed=0, batch_size=16, progress=True)]
        generated, ceiling = judged(videos, prompts), ceiling_rows(pipe.model, prompts, pipe.video_shape)
        results[name] = {who: {"rows": rows, "confusion": {a: confusion(rows, a) for a in VALUES}}
                         for who, rows in (("generated", generated), ("ceiling", ceiling))}
        sheet_videos += videos
        sheet_rows += generated
        print(f"[{name}] generated: shape {rate(generated, 'shape'):.0%}, all right {rate(generated):.0%}; "
              f"tokenizer ceiling: shape {rate(ceiling, 'shape'):.0%}, all right {rate(ceiling):.0%}")
    stem = RESULTS / f"failures_{pipe.name}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({"model": pipe.name, "n": args.n, "sets": results}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(pipe.name, results, args.n))
    plot_confusions(results, stem.with_suffix(".png"))
    failure_sheet(sheet_videos, sheet_rows, stem.parent / f"{stem.name}_sheet.png")
    print(f"wrote {stem}.json, .md, .png and {stem.name}_sheet.png")


if __name__ == "__main__":
    main()
