"""Best of N: the checker's all-right rate when a pipeline draws N candidates per prompt and the
video-text matcher keeps one (``pipe(prompt, candidates=N)``), for N = 1, 2, 4, 8, against the
oracle that keeps a right candidate whenever there is one, and the seconds per video it costs.

    python benchmarks/rerank.py --model videogpt-shapes -n 100
    # -> benchmarks/results/rerank_MODEL.{json,md,png}

One pass draws the largest N for every prompt of the `t2v eval` prompt sets (seed 0): candidate j
of a prompt is the same whatever N asks for it, so best of 2 and best of 4 rerank the first 2 and
4 of the same draws, and best of 1 is what `t2v eval` measures without reranking. Give
``--reranker A B`` to compare matchers: B reranks the very draws A does (A is the one timed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from plots import pyplot

from t2v import load_pipeline
from t2v.eval.run import SPEED_PROMPT
from t2v.eval.shapes import judge_video, prompt_set, wilson_interval
from t2v.hardware import cpu_name
from t2v.pipelines.base import load_reranker

RESULTS = Path(__file__).resolve().parent / "results"


def draw_and_judge(pipe, items: list[tuple[str, str]], *, candidates: int, seed: int, batch_size: int,
                   others: tuple = ()) -> dict:
    """Per prompt: the checker's verdict on each candidate (P, N) and the matcher's score (P, N); the
    scores of each matcher in ``others`` on the same candidates under "other_scores"."""
    right, scores, generate_s, rerank_s = [], [], 0.0, 0.0
    other_scores = [[] for _ in others]
    for start in range(0, len(items), batch_size):
        prompts = [p for _, p in items[start:start + batch_size]]
        t0 = time.perf_counter()
        given = pipe.prepare_prompts(prompts)  # rewritten into the model's caption words, as generate_batch does
        frames = pipe.generate_candidates(given, seed + start, candidates)  # (B, N, T, H, W, 3)
        flat, flat_prompts = frames.flatten(0, 1), [p for p in given for _ in range(candidates)]  # (B N, ...)
        t1 = time.perf_counter()
        s = pipe.reranker.score(flat, flat_prompts)
        rerank_s += time.perf_counter() - t1
        generate_s += t1 - t0
        scores.append(s.view(len(prompts), candidates).numpy())
        for matcher, kept in zip(others, other_scores):
            kept.append(matcher.score(flat, flat_prompts).view(len(prompts), candidates).numpy())
        right.append(np.array([[judge_video(f.numpy(), p).all_right for f in row] for row, p in zip(frames, prompts)]))
        print(f"  {start + len(prompts)}/{len(items)} prompts", file=sys.stderr, end="\r")
    return {"right": np.concatenate(right), "scores": np.concatenate(scores),
            "other_scores": [np.concatenate(kept) for kept in other_scores],
            "generate_s_per_video": generate_s / (len(items) * candidates), "rerank_s_per_video": rerank_s / (len(items) * candidates)}


def rates(right: np.ndarray, scores: np.ndarray, ns: list[int]) -> list[dict]:
    """For each N: reranked all-right rate, oracle rate (any of the first N right) and their intervals."""
    rows = []
    for n in ns:
        kept = right[np.arange(len(right)), scores[:, :n].argmax(1)]
        oracle = right[:, :n].any(1)
        rows.append({"candidates": n, "all_right": float(kept.mean()), "ci95": list(wilson_interval(int(kept.sum()), len(kept))),
                     "oracle": float(oracle.mean()), "oracle_ci95": list(wilson_interval(int(oracle.sum()), len(oracle)))})
    return rows


def seconds_per_video(pipe, candidates: int, repeats: int = 5) -> float:
    """Median wall time of one reranked video with ``candidates`` (after one warm-up)."""
    from t2v.eval.metrics import median_seconds

    return median_seconds(lambda: pipe(SPEED_PROMPT, seed=0, candidates=candidates),
                          repeats=repeats, warmup=1)[0]


def rates_table(sets: dict) -> list[str]:
    """Markdown rows: one per prompt set, a cell per N with the reranked rate, its interval and the oracle."""
    lines = ["| prompt set | " + " | ".join(f"best of {r['candidates']}" for r in next(iter(sets.values()))) + " |",
             "| --- |" + " --- |" * len(next(iter(sets.values())))]
    for name, rows in sets.items():
        lines.append(f"| {name} | " + " | ".join(
            f"**{r['all_right']:.0%}** [{r['ci95'][0]:.0%}, {r['ci95'][1]:.0%}] (oracle {r['oracle']:.0%})" for r in rows) + " |")
    return lines


def markdown(result: dict) -> str:
    lines = [f"Best of N for `{result['model']}` (n={result['n']} prompts per set, seed {result['seed']}; the matcher "
             f"`{result['reranker']}` keeps one candidate; the oracle keeps a right one whenever one of the N is"
             + (f"; prompts rewritten into the {result['rewrite']} caption words first" if result.get("rewrite") else "")
             + ").", "",
             *rates_table(result["sets"])]
    for other, sets in result.get("other_rerankers", {}).items():
        lines += ["", f"The same draws reranked by `{other}`:", "", *rates_table(sets)]
    lines += ["", "| candidates | seconds per video |", "| --- | --- |"]
    lines += [f"| {n} | {s:.2f} |" for n, s in result["seconds_per_video"].items()]
    lines += ["", f"{result['threads']} threads, {result['cpu']}, {result['precision']}. "
              f"Command: `{result['command']}`."]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    """All-right rate against N per prompt set: reranked (solid, 95% band) and the oracle (dashed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, rows) in enumerate(result["sets"].items()):
        colour = f"C{i}"
        ns = [r["candidates"] for r in rows]
        ax.plot(ns, [100 * r["all_right"] for r in rows], "o-", color=colour, label=f"{name}, matcher picks")
        ax.fill_between(ns, [100 * r["ci95"][0] for r in rows], [100 * r["ci95"][1] for r in rows], color=colour, alpha=0.12)
        ax.plot(ns, [100 * r["oracle"] for r in rows], "--", color=colour, alpha=0.7, label=f"{name}, oracle")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("candidates per prompt (N)")
    ax.set_ylabel("checker all-right (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{result['model']}: best of N")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videogpt-shapes")
    parser.add_argument("--reranker", nargs="+", default=["matcher-shapes"],
                        help="the pipeline's matcher (timed); any more rerank the same draws, for comparison")
    parser.add_argument("-n", type=int, default=100, help="prompts per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sets", nargs="+", default=["held_out", "seen", "paraphrase"])
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per batch (each with max N candidates)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default=None, help="results file name (default rerank_MODEL)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision="float32", reranker=args.reranker[0])
    others = [load_reranker(name) for name in args.reranker[1:]]
    ns, most = sorted(args.candidates), max(args.candidates)
    result = {"model": pipe.name, "reranker": args.reranker[0], "n": args.n, "seed": args.seed, "threads": args.threads,
              "rewrite": getattr(pipe.rewriter, "vocabulary", None),
              "cpu": cpu_name(), "precision": pipe.precision, "sets": {}, "per_set": {},
              "other_rerankers": {name: {} for name in args.reranker[1:]},
              "command": "python benchmarks/rerank.py " + shlex.join(sys.argv[1:])}
    for name in args.sets:
        drawn = draw_and_judge(pipe, prompt_set(name, n=args.n, seed=args.seed), candidates=most, seed=args.seed,
                               batch_size=args.batch_size, others=others)
        result["sets"][name] = rates(drawn["right"], drawn["scores"], ns)
        for other, scores in zip(args.reranker[1:], drawn["other_scores"]):
            result["other_rerankers"][other][name] = rates(drawn["right"], scores, ns)
            print(f"{name}, reranked by {other}:", ", ".join(f"best of {r['candidates']}: {r['all_right']:.0%}"
                                                           for r in result["other_rerankers"][other][name]), flush=True)
        result["per_set"][name] = {"right": drawn["right"].astype(int).tolist(), "scores": drawn["scores"].round(4).tolist(),
                                   "generate_s_per_candidate": drawn["generate_s_per_video"],
                                   "rerank_s_per_candidate": drawn["rerank_s_per_video"]}
        print(name, ", ".join(f"best of {r['candidates']}: {r['all_right']:.0%} (oracle {r['oracle']:.0%})"
                              for r in result["sets"][name]), flush=True)
    result["seconds_per_video"] = {str(n): round(seconds_per_video(pipe, n), 3) for n in ns}
    print("seconds per video:", result["seconds_per_video"])
    out = RESULTS / f"{args.name or 'rerank_' + pipe.name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
