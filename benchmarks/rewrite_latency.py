"""What the prompt rewriter adds to a `t2v generate` call: seconds to rewrite one paraphrase prompt.

Each prompt is rewritten by a fresh rewriter (an empty cache of MiniLM vectors, as in a new `t2v generate`
process), with MiniLM alone and with the WordNet lexicon; MiniLM itself and the WordNet files are loaded
once beforehand, as the pipeline has loaded MiniLM before it rewrites. Medians over the prompts.

    python benchmarks/rewrite_latency.py -n 20 --threads 2
    # -> benchmarks/results/rewrite_latency.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from t2v.eval.shapes import prompt_set
from t2v.hardware import cpu_name
from t2v.text.rewrite import moving_shapes_rewriter

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def seconds_per_prompt(prompts: list[str], **options) -> list[float]:
    out = []
    for prompt in prompts:
        rewriter = moving_shapes_rewriter(**options)  # a fresh cache, as in a new process
        start = time.perf_counter()
        rewriter(prompt)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="paraphrase prompts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompts = [p for _, p in prompt_set("paraphrase", args.n, 0)]
    moving_shapes_rewriter()("a tiny red ball rising")  # loads MiniLM and opens WordNet, as a pipeline would have
    rows = {}
    for name, options in (("MiniLM alone", {"lexicon": None}), ("MiniLM and WordNet (default)", {})):
        times = seconds_per_prompt(prompts, **options)
        rows[name] = {"median_s": statistics.median(times), "max_s": max(times)}
        print(f"{name}: median {rows[name]['median_s']:.3f} s, max {rows[name]['max_s']:.3f} s")
    hardware = f"{cpu_name()}, {args.threads} threads"
    command = f"python benchmarks/rewrite_latency.py -n {args.n} --threads {args.threads}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rewrite_latency.json").write_text(json.dumps({"command": command, "hardware": hardware,
                                                             "prompts": args.n, "rows": rows}, indent=2) + "\n")
    lines = [f"Seconds to rewrite one paraphrase prompt with a fresh rewriter ({args.n} prompts, {hardware}; "
             f"`{command}`):", "", "| rewriter | median | slowest |", "| --- | --- | --- |",
             *(f"| {name} | {r['median_s']:.3f} s | {r['max_s']:.3f} s |" for name, r in rows.items())]
    (RESULTS / "rewrite_latency.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'rewrite_latency.md'}")


if __name__ == "__main__":
    main()
