"""Samplers and step counts against quality: checker all-right rate and seconds per video for each
sampler at each step count, as JSON, a PNG plot and a markdown table.

    python benchmarks/samplers.py --model dit-shapes            # -> benchmarks/results/samplers_dit-shapes.{json,png,md}
    python benchmarks/samplers.py --model phenaki-shapes --samplers default --steps 4 8 12 24 48   # MaskGIT steps

Every sampler drives the same model (``t2v.diffusion.samplers`` converts between the flow and
variance-preserving parametrisations), on the same prompts and seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from t2v import load_pipeline
from t2v.eval.run import checker_rates

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dit-shapes")
    parser.add_argument("--samplers", nargs="+", default=["ddim", "dpm++", "flow-euler"],
                        help="diffusion samplers, or 'default' for the model's own (e.g. MaskGIT's parallel decoding)")
    parser.add_argument("--steps", nargs="+", type=int, default=[10, 20, 50])
    parser.add_argument("-n", type=int, default=100, help="prompts of the seen-pairs set per cell")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision="float32")  # as `t2v eval` measures
    rows = []
    for sampler in args.samplers:
        for steps in args.steps:
            options = {"steps": steps} | ({} if sampler == "default" else {"sampler": sampler})
            r = checker_rates(pipe, n=args.n, **options)
            rows.append({"sampler": sampler, "steps": steps, "all_right": r["all_right"],
                         "ci95": r["ci95"]["all_right"], "seconds_per_video": r["seconds_per_video"]})
            print(f"{sampler:>10} {steps:>3} steps: all right {r['all_right']:.1%}, {r['seconds_per_video']:.3f} s/video")
    stem = RESULTS / f"samplers_{pipe.name}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"model": pipe.name, "prompts": f"seen pairs, n={args.n}, seed 0", "threads": args.threads,
            "note": "seconds per video include decoding to pixels and are measured in batches of 16"}
    stem.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table(rows, meta))
    plot(rows, stem.with_suffix(".png"), pipe.name)
    print(f"wrote {stem}.json, .md and .png")


def table(rows: list[dict], meta: dict) -> str:
    lines = [f"Sampler comparison for `{meta['model']}` ({meta['prompts']}, {meta['threads']} threads; "
             f"{meta['note']}).", "", "| sampler | steps | all right (95% CI) | s / video |", "| --- | --- | --- | --- |"]
    for r in rows:
        low, high = r["ci95"]
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['all_right']:.1%} [{low:.1%}, {high:.1%}] | "
                     f"{r['seconds_per_video']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        mine = [r for r in rows if r["sampler"] == sampler]
        ax.errorbar([r["seconds_per_video"] for r in mine], [100 * r["all_right"] for r in mine],
                    yerr=[[100 * (r["all_right"] - r["ci95"][0]) for r in mine],
                          [100 * (r["ci95"][1] - r["all_right"]) for r in mine]], marker="o", capsize=3, label=sampler)
        for r in mine:
            ax.annotate(str(r["steps"]), (r["seconds_per_video"], 100 * r["all_right"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("seconds per video (labels: steps)")
    ax.set_ylabel("checker all-right, seen prompts (%)")
    ax.set_title(f"{name}: samplers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
