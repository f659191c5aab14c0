"""A physical reference: the machine's measured matmul GFLOP/s, and each model's achieved FLOP/s in
a training step as a share of it. Writes JSON and a PNG, prints a table. Runs in the project venv.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/flops.py
    ... benchmarks/flops.py --model configs/videogpt_shapes.yaml --model runs/videogpt-vqvae/model --model checkpoints/NAME
    ... benchmarks/flops.py --quick   # seconds-long smoke run (writes benchmarks/results/flops_quick.json)

A model is a YAML config (fresh weights: the cost of a step does not depend on them), or a bundled
model name or checkpoint directory (its trained weights). Each is trained as its family's config in configs/ says:
batch size and bf16 autocast or fp32. FLOPs of one step (forward, backward; the frozen tokenizer's
encode included, the cached text encoder not) come from ``torch.utils.flop_counter``; the step
time is the median over ``--steps`` steps on fixed batches (data drawing left out).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from peers import FixedBatches, step_seconds, train_config
from t2v.checkpoint import load_model, read_config
from t2v.config import load_yaml
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.errors import T2VError
from t2v.eval.metrics import median_seconds
from t2v.pipelines.base import resolve_model
from t2v.train import Trainer, build_model
from t2v.train.trainer import count_parameters, describe_hardware

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_gflops(dtype: torch.dtype, *, n: int, repeats: int) -> dict:
    """Median GFLOP/s of an (n x n) @ (n x n) matmul (2 n^3 FLOPs) after two warm-up runs."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    median, _ = median_seconds(lambda: a @ b, repeats=repeats, warmup=2)
    return {"n": n, "repeats": repeats, "seconds": round(median, 5), "gflop_s": round(2 * n**3 / median / 1e9, 1)}


def family_config(family: str, configs_dir: Path) -> tuple[Path | None, dict]:
    """The first YAML in ``configs_dir`` that configures ``family``, and its parsed content."""
    for path in sorted(configs_dir.glob("*.yaml")):
        spec = load_yaml(path)
        if spec.get("family") == family:
            return path, spec
    return None, {}


def load(source: str, tokenizer: str | None):
    """A YAML config (fresh weights), or a bundled model name or checkpoint directory (trained weights) -> model, family."""
    if not source.endswith((".yaml", ".yml")):
        directory = resolve_model(source)
        return load_model(directory), read_config(directory)["family"]
    spec = load_yaml(source)
    section = dict(spec.get("model") or {})
    if tokenizer and "tokenizer" in section:
        section["tokenizer"] = tokenizer
    torch.manual_seed(0)
    return build_model(spec["family"], section), spec["family"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None,
                        help="YAML config, bundled model name or checkpoint directory (repeatable; "
                             "default: our VideoGPT prior and its VQ-VAE)")
    parser.add_argument("--tokenizer", default=None,
                        help="stage-1 checkpoint directory replacing a YAML config's own (videogpt's: runs/videogpt-vqvae/model)")
    parser.add_argument("--configs", type=Path, default=Path("configs"), help="where each family's training config is found")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="videos per step; 0 = the family config's batch_size")
    parser.add_argument("--precision", choices=("config", "fp32", "bf16"), default="config")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="default benchmarks/results/flops.json (flops_quick.json with --quick)")
    parser.add_argument("--png", type=Path, default=None, help="default: the JSON path with .png")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run: small matmuls, batch 2, one timed step")
    args = parser.parse_args()
    if args.quick:
        args.matmul_size, args.matmul_repeats, args.warmup, args.steps, args.batch = 512, 3, 1, 1, args.batch or 2
    args.model = args.model or ["configs/videogpt_shapes.yaml", "runs/videogpt-vqvae/model"]
    args.json = args.json or Path("benchmarks/results") / ("flops_quick.json" if args.quick else "flops.json")
    args.png = args.png or args.json.with_suffix(".png")
    torch.set_num_threads(args.threads)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    loaded = []  # every model first, so that a missing checkpoint fails before any measuring
    for source in args.model:
        try:
            loaded.append((source, *load(source, args.tokenizer)))
        except T2VError as error:
            raise SystemExit(f"{source}: {error}") from None
    peak = {name: matmul_gflops(dtype, n=args.matmul_size, repeats=args.matmul_repeats) for name, dtype in DTYPES.items()}
    log("matmul peak: " + ", ".join(f"{k} {v['gflop_s']} GFLOP/s" for k, v in peak.items()))
    stream = ShapesStream(ShapesDataConfig(split="train"))
    models = []
    for source, model, family in loaded:
        config_path, spec = family_config(family, args.configs)
        section = spec.get("train", {})
        precision = args.precision if args.precision != "config" else ("bf16" if section.get("bf16") else "fp32")
        batch = args.batch or section.get("batch_size", 8)
        cfg = train_config(section, steps=1000, batch_size=batch, threads=args.threads, bf16=precision == "bf16")
        times, flops = step_seconds(Trainer(model, FixedBatches(stream, batch, count=2), cfg, log=log),
                                    warmup=max(1, args.warmup), steps=args.steps)
        step_s = statistics.median(times)
        achieved = flops / step_s / 1e9
        models.append({"model": source, "family": family, "train_config": str(config_path) if config_path else None,
                       "trainable_params": count_parameters(model), "batch_size": batch, "precision": precision,
                       "gflop_per_step": round(flops / 1e9, 2), "gflop_per_video": round(flops / 1e9 / batch, 2),
                       "step_s": round(step_s, 4), "times": [round(t, 4) for t in times],
                       "achieved_gflop_s": round(achieved, 1),
                       "share_of_peak": round(achieved / peak[precision]["gflop_s"], 4),
                       "share_of_fp32_peak": round(achieved / peak["fp32"]["gflop_s"], 4)})
        log(f"{source}: {flops / 1e9:.1f} GFLOP per step of {batch}, {step_s:.3f} s, {achieved:.1f} GFLOP/s "
            f"= {models[-1]['share_of_peak']:.1%} of the {precision} matmul peak")

    result = {"quick": args.quick, "command": " ".join(sys.argv), "hardware": describe_hardware(torch.device("cpu"), args.threads),
              "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
              "matmul_peak": peak, "models": models}
    result["markdown"], result["plot"] = markdown(result), str(args.png)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.png)
    print(("**Quick smoke run: not a measurement.**\n\n" if args.quick else "") + result["markdown"])
    log(f"wrote {args.json} and {args.png}")


def markdown(result: dict) -> str:
    peak = result["matmul_peak"]
    lines = [f"matmul peak ({peak['fp32']['n']}x{peak['fp32']['n']}, {result['threads']} threads): "
             f"fp32 {peak['fp32']['gflop_s']} GFLOP/s, bf16 {peak['bf16']['gflop_s']} GFLOP/s", "",
             "| model | params | batch | precision | GFLOP / step | s / step | GFLOP/s | share of peak |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {m['model']} | {m['trainable_params'] / 1e6:.2f}M | {m['batch_size']} | {m['precision']} | {m['gflop_per_step']} "
              f"| {m['step_s']} | {m['achieved_gflop_s']} | {m['share_of_peak']:.1%} |" for m in result["models"]]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:  # not a project requirement; benchmarks/.venv-peers has it
        print(f"matplotlib is not installed here: no {path}; run with benchmarks/.venv-peers/bin/python for the plot",
              file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak, models = result["matmul_peak"], result["models"]
    names = [f"{Path(m['model']).stem if m['model'].endswith('.yaml') else m['family']}\n({m['precision']})" for m in models]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.bar(["matmul fp32", "matmul bf16", *names], [peak["fp32"]["gflop_s"], peak["bf16"]["gflop_s"],
                                                      *(m["achieved_gflop_s"] for m in models)],
             color=["grey", "grey", *["tab:blue"] * len(models)])
    left.set_title("GFLOP/s: matmul peak and training steps", fontsize=10)
    right.bar(names, [100 * m["share_of_peak"] for m in models], color="tab:blue")
    right.set_title("training step: % of the matmul peak (same precision)", fontsize=10)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(("QUICK SMOKE RUN, not a measurement: " if result["quick"] else "") + result["hardware"], fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
