"""Sampling precision: checker rates and seconds per video of one model in float32 and in bfloat16.

    python benchmarks/precision.py --model phenaki-shapes
    # -> benchmarks/results/precision_phenaki-shapes.{json,md}

``t2v eval`` measures in float32; ``t2v generate`` samples in the model's default precision ("auto":
bfloat16 autocast for a family that declares it safe, on CPUs with bfloat16 instructions and on GPUs).
This runs the shapes suite at each precision on the same prompts and seeds, so the table says whether the
faster precision draws videos as often right, then times the precisions taking turns (median of 10 calls each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from t2v import load_pipeline
from t2v.eval.run import SPEED_PROMPT, run_suites
from t2v.hardware import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ("held_out", "seen", "paraphrase", "two_objects")


def table(model: str, rows: list[dict], n: int, command: str) -> str:
    lines = [f"`{model}` at each sampling precision (shapes suite n={n} per prompt set, seed 0; speed: median "
             f"seconds per 16x64x64 video, {rows[0]['threads']} threads, {rows[0]['cpu']}).", "",
             "| precision | " + " | ".join(SETS) + " | s / video |", "| --- |" + " --- |" * (len(SETS) + 1)]
    for r in rows:
        cells = [f"{r['shapes'][s]['all_right']:.0%} [{r['shapes'][s]['ci95']['all_right'][0]:.0%}, "
                 f"{r['shapes'][s]['ci95']['all_right'][1]:.0%}]" for s in SETS]
        lines.append(f"| {r['precision']} | " + " | ".join(cells) + f" | {r['seconds_per_video']:.3f} |")
    return "\n".join(lines + ["", f"Command: `{command}`."]) + "\n"


def alternate_timings(model: str, precisions: list[str], *, repeats: int = 10) -> list[list[float]]:
    """Seconds per video at each precision, the precisions taking turns call by call: a shared machine's
    speed drifts by a quarter within minutes, which timing one precision after the other reads as a difference."""
    pipes = [load_pipeline(model, precision=p) for p in precisions]
    for pipe in pipes:  # warm-up
        pipe(SPEED_PROMPT, seed=0)
    times: list[list[float]] = [[] for _ in pipes]
    for _ in range(repeats):
        for pipe, row in zip(pipes, times):
            start = time.perf_counter()
            pipe(SPEED_PROMPT, seed=0)
            row.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="phenaki-shapes")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bf16"], choices=("float32", "bf16", "auto"))
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for precision in args.precisions:
        results = run_suites(args.model, ["shapes"], n=args.n, precision=precision)
        rows.append({"precision": results["precision"], "shapes": results["shapes"],
                     "threads": torch.get_num_threads(), "cpu": cpu_name()})
    for row, times in zip(rows, alternate_timings(args.model, args.precisions)):
        row |= {"seconds_per_video": statistics.median(times), "times": times}
    command = f"python benchmarks/precision.py --model {args.model}" + (f" -n {args.n}" if args.n != 100 else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"precision_{args.model}"
    stem.with_suffix(".json").write_text(json.dumps({"model": args.model, "command": command, "rows": rows}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table(args.model, rows, args.n, command))
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
