"""Sampling settings against quality: the checker's all-right rate for each combination of guidance
scale (and sampling temperature, top-k and top-p, for the token models that take them) on a *tuning*
draw of the prompt sets, so a model's default can be chosen without looking at the evaluation prompts.

    python benchmarks/sweep.py --model videogpt-shapes --guidance 1.5 3 5 8 --temperature 1.0 0.7
    python benchmarks/sweep.py --model videogpt-shapes --guidance 3 5 --top-k 0 16 64 --name sweep_videogpt-shapes_top_k
    python benchmarks/sweep.py --model dit-shapes --guidance 2 4 6 9
    python benchmarks/sweep.py --model videogpt-shapes --guidance 3 --precision bf16 --name sweep_videogpt-shapes_bf16
    python benchmarks/sweep.py --model dit-shapes --guidance 4 --sampler flow-euler ddim dpm++ --steps 20 --name sweep_dit-shapes_sampler
    # -> benchmarks/results/sweep_MODEL.{json,md,png} (or NAME.*)

The tuning prompts are the seen and held-out sets drawn with ``--seed 1`` (`t2v eval` uses seed 0):
other prompts, other noise. Each cell is scored on both sets together (2 x n videos).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from pathlib import Path

import torch
from plots import pyplot

from t2v import load_pipeline
from t2v.eval.run import checker_rates
from t2v.eval.shapes import wilson_interval

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT_SETS = ("seen", "held_out")
# sampling options a sweep can vary, guidance always
AXES = ("guidance", "temperature", "top_k", "top_p", "choice_temperature", "sampler", "steps")


def score_cell(pipe, options: dict, *, n: int, seed: int) -> dict:
    """All-right rate over the tuning prompt sets with ``options``; per-set rates beside it."""
    per_set = {name: checker_rates(pipe, prompt_set_name=name, n=n, seed=seed, **options) for name in PROMPT_SETS}
    right = sum(round(r["all_right"] * n) for r in per_set.values())
    total = n * len(per_set)
    return {**options, "all_right": right / total, "ci95": list(wilson_interval(right, total)),
            **{f"{name}_all_right": r["all_right"] for name, r in per_set.items()},
            "seconds_per_video": sum(r["seconds_per_video"] for r in per_set.values()) / len(per_set)}


def grid(args, pipe) -> list[dict]:
    """Every combination of the swept options that the model takes."""
    takes = set(getattr(pipe.model, "sampling_options", ()))
    axes = {name: getattr(args, name) for name in AXES if getattr(args, name) and (name == "guidance" or name in takes)}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def shown(value) -> str:
    """A table cell: numbers short (3, 0.7), names as they are (ddim)."""
    return value if isinstance(value, str) else f"{value:g}"


def table(rows: list[dict], meta: dict) -> str:
    names = [k for k in AXES if k in rows[0]]
    lines = [f"Sampling sweep for `{meta['model']}` ({meta['prompts']}; the evaluation uses seed 0).", "",
             "| " + " | ".join(names) + " | seen | held-out | all right (95% CI) |",
             "|" + " --- |" * (len(names) + 3)]
    best = max(rows, key=lambda r: r["all_right"])
    for r in rows:
        low, high = r["ci95"]
        mark = " **(best)**" if r is best else ""
        lines.append("| " + " | ".join(shown(r[k]) for k in names) + f" | {r['seen_all_right']:.0%} | "
                     f"{r['held_out_all_right']:.0%} | {r['all_right']:.1%} [{low:.1%}, {high:.1%}]{mark} |")
    if "command" in meta:
        lines += ["", f"Command: `{meta['command']}`."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, name: str) -> None:
    """The rate against the option swept over most values (guidance on a tie), one line per setting of the rest."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    swept = [k for k in AXES if k in rows[0]]
    x = max(swept, key=lambda k: len({r[k] for r in rows}))  # max keeps the first of equals: guidance
    others = [k for k in swept if k != x]
    for values in dict.fromkeys(tuple(r[k] for k in others) for r in rows):
        mine = [r for r in rows if tuple(r[k] for k in others) == values]
        ax.errorbar([r[x] for r in mine], [100 * r["all_right"] for r in mine],
                    yerr=[[100 * (r["all_right"] - r["ci95"][0]) for r in mine],
                          [100 * (r["ci95"][1] - r["all_right"]) for r in mine]], marker="o", capsize=3,
                    label=", ".join(f"{k.replace('_', ' ')} {shown(v)}" for k, v in zip(others, values)) or None)
    ax.set_xlabel(x.replace("_", " ") + (" scale" if x == "guidance" else ""))
    ax.set_ylabel("checker all-right, tuning prompts (%)")
    ax.set_title(f"{name}: sampling sweep")
    if others:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videogpt-shapes")
    parser.add_argument("--guidance", nargs="+", type=float, required=True)
    parser.add_argument("--temperature", nargs="+", type=float, default=None,
                        help="sampling temperatures (token models only; ignored where the model takes none)")
    parser.add_argument("--top-k", dest="top_k", nargs="+", type=int, default=None, help="top-k cut-offs (0: none)")
    parser.add_argument("--top-p", dest="top_p", nargs="+", type=float, default=None, help="nucleus masses (1: none)")
    parser.add_argument("--choice-temperature", dest="choice_temperature", nargs="+", type=float, default=None,
                        help="MaskGIT's Gumbel noise on the confidences that pick the kept tokens (Phenaki)")
    parser.add_argument("--sampler", nargs="+", default=None, help="diffusion samplers (DiT: flow-euler, ddim, dpm++, ...)")
    parser.add_argument("--steps", nargs="+", type=int, default=None, help="sampling steps (diffusion and MaskGIT models)")
    parser.add_argument("--name", default=None, help="results file stem under benchmarks/results/ (default sweep_MODEL)")
    parser.add_argument("-n", type=int, default=50, help="prompts per set (seen and held-out) per cell")
    parser.add_argument("--seed", type=int, default=1, help="draw of the tuning prompts; keep it off 0, the evaluation's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="float32", choices=("float32", "bf16"),
                        help="sampling precision (default float32, as `t2v eval` measures); bf16 checks a faster default")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision=args.precision)
    rows = []
    for options in grid(args, pipe):
        rows.append(score_cell(pipe, options, n=args.n, seed=args.seed))
        print(f"{options}: all right {rows[-1]['all_right']:.1%} (seen {rows[-1]['seen_all_right']:.0%}, "
              f"held-out {rows[-1]['held_out_all_right']:.0%})", flush=True)
    label = args.model if Path(args.model).is_dir() else pipe.name  # a run directory by its path, not "model"
    meta = {"model": label, "prompts": f"seen + held-out pairs, n={args.n} each, seed {args.seed}, {pipe.precision}",
            "command": f"python benchmarks/sweep.py {shlex.join(sys.argv[1:])}",
            "threads": args.threads, "best": {k: v for k, v in max(rows, key=lambda r: r["all_right"]).items()
                                              if k in AXES}}
    stem = RESULTS / (args.name or f"sweep_{pipe.name}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table(rows, meta))
    plot(rows, stem.with_suffix(".png"), label)
    print(f"best {meta['best']}; wrote {stem}.json, .md and .png")


if __name__ == "__main__":
    main()
