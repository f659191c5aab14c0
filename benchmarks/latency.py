"""Seconds per generated video for a bundled model on the CPU (or GPU), as JSON.

    python benchmarks/latency.py --model videogpt-shapes --threads 2   # -> benchmarks/results/latency_videogpt-shapes.json
    python benchmarks/latency.py --model phenaki-shapes --precision bf16 --json runs/latency_phenaki_bf16.json

Median of ``--repeats`` runs after two warm-up runs; for autoregressive families it also
times sampling without the KV cache; token models report their tokens per video, and models with
a choice of sampling steps their default number of steps. ``--precision`` is the pipeline's: float32
(the default here), bf16 (autocast; pays only with bfloat16 instructions: AMX / AVX512-BF16 CPUs, GPUs)
or auto, what ``t2v generate`` uses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from plots import pyplot

from t2v import load_pipeline
from t2v.eval.metrics import median_seconds, peak_memory_mb
from t2v.eval.run import SPEED_PROMPT
from t2v.hardware import cpu_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="videogpt-shapes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--precision", default="float32", choices=("auto", "float32", "bf16"))
    parser.add_argument("--json", type=Path, default=None, help="default: benchmarks/results/latency_MODEL.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision=args.precision)
    t, h, w = pipe.video_shape
    median, times = median_seconds(lambda: pipe(SPEED_PROMPT, seed=0), repeats=args.repeats)
    result = {"model": pipe.name, "video": f"{t}x{h}x{w}", "threads": args.threads, "repeats": args.repeats,
              "precision": pipe.precision,
              "seconds_per_video": round(median, 4), "times": [round(x, 4) for x in times],
              "cpu": cpu_name(), "torch": torch.__version__}
    if hasattr(pipe.model, "num_tokens"):
        result["tokens_per_video"] = pipe.model.num_tokens
    if "steps" in getattr(pipe.model, "sampling_options", ()):
        config = pipe.model.config  # the default number of sampling steps: MaskGIT's, or the diffusion sampler's
        result["steps"] = getattr(config, "steps", None) or config.diffusion.steps
    if "use_cache" in getattr(pipe.model, "sampling_options", ()):
        no_cache, _ = median_seconds(lambda: pipe(SPEED_PROMPT, seed=0, use_cache=False), repeats=3, warmup=1)
        result["seconds_per_video_without_kv_cache"] = round(no_cache, 4)
        result["kv_cache_speedup"] = round(no_cache / median, 2)
    result["peak_rss_mb"] = round(peak_memory_mb(), 1)
    print(json.dumps(result, indent=2))
    out = args.json or Path(__file__).parent / "results" / f"latency_{pipe.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def plot(result: dict, path: Path) -> None:
    """Each timed run as a dot over its median bar; sampling without the KV cache beside it."""
    plt = pyplot()
    rows = [("sampling", result["seconds_per_video"], result["times"])]
    if "seconds_per_video_without_kv_cache" in result:
        rows[0] = ("with KV cache", *rows[0][1:])
        rows.append(("without KV cache", result["seconds_per_video_without_kv_cache"], []))
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.6 * len(rows)))
    for y, (label, median, times) in enumerate(rows):
        ax.barh(y, median, color="tab:blue", alpha=0.6)
        ax.plot(times, [y] * len(times), "k.", markersize=5)
        ax.text(median, y, f" {median:.2f} s", va="center")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_xlabel(f"seconds per {result['video']} video ({result['threads']} threads, median of {result['repeats']})")
    ax.set_title(result["model"])
    ax.set_xlim(0, max(r[1] for r in rows) * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
