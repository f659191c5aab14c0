"""The DiT paper's conditioning comparison on Moving Shapes at equal compute: adaLN-Zero against
in-context conditioning and cross-attention only, each trained for the same steps on the same
batches from the same recipe (as in the DiT paper; the training GFLOPs of each are reported, and
the wall time), then scored by final loss and checker rate.

    python benchmarks/conditioning.py --steps 600      # -> benchmarks/results/conditioning.{json,md,png}

The recipe is configs/dit_shapes.yaml at 16x64x64 only (no size buckets, image prompts or
extension, which need per-token timesteps). Needs the trained VAE that the config names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from plots import mean_of_last, shown_path, value_and_rate_panels

from t2v import load_pipeline
from t2v.eval.run import checker_rates
from t2v.models.dit import CONDITIONINGS
from t2v.train import train_from_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def variant_config(base: dict, conditioning: str, steps: int, out_dir: Path) -> dict:
    spec = json.loads(json.dumps(base))  # a deep copy
    spec["model"] |= {"conditioning": conditioning, "image_prompt_prob": 0.0, "extend_prob": 0.0}
    spec["data"].pop("buckets", None)
    spec["train"] |= {"steps": steps, "warmup_steps": min(spec["train"].get("warmup_steps", 0), steps // 5),
                      "max_minutes": 0, "out_dir": str(out_dir), "half_export": False, "checkpoint_every": steps}
    return spec


def training_gflops(model_dir: Path, batch_size: int) -> float:
    """FLOPs of one training step (forward + backward) of the model at ``model_dir``, in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    from t2v.checkpoint import load_model
    from t2v.data.stream import ShapesDataConfig, ShapesStream

    model = load_model(model_dir).train()
    batch = ShapesStream(ShapesDataConfig()).batch(0, batch_size)
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.training_loss(batch)
        loss.backward()
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "dit_shapes.yaml")
    parser.add_argument("--steps", type=int, default=600, help="training steps per variant (batch size of the config)")
    parser.add_argument("-n", type=int, default=100, help="seen-pair prompts scored per variant")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "conditioning")
    parser.add_argument("--variants", nargs="+", default=list(CONDITIONINGS))
    parser.add_argument("--tokenizer", default=None, help="VAE checkpoint (default: the one the config names)")
    parser.add_argument("--replot", action="store_true", help="only redraw the table and plot from conditioning.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((RESULTS / "conditioning.json").read_text())
        (RESULTS / "conditioning.md").write_text(table(saved["rows"], saved))
        plot(saved["rows"], RESULTS / "conditioning.png")
        print(f"wrote {RESULTS / 'conditioning'}.md and .png from conditioning.json")
        return
    base = yaml.safe_load(args.config.read_text())
    if args.tokenizer:
        base["model"]["tokenizer"] = args.tokenizer
    rows = []
    for conditioning in args.variants:
        out = args.out_dir / conditioning
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(variant_config(base, conditioning, args.steps, out)))
        (out / "log.jsonl").unlink(missing_ok=True)
        model_dir = train_from_config("dit", config_path)
        record = json.loads((model_dir / "training.json").read_text())["stages"][-1]
        pipe = load_pipeline(model_dir, precision="float32")  # as `t2v eval` measures
        rates = checker_rates(pipe, n=args.n)
        params = sum(p.numel() for n, p in pipe.model.named_parameters() if not n.startswith(("tokenizer.", "text.encoder.")))
        rows.append({"conditioning": conditioning, "steps": record["steps"], "wall_minutes": record["wall_minutes"],
                     "gflop_per_step": training_gflops(model_dir, base["train"]["batch_size"]),
                     "final_loss": mean_of_last(out / "log.jsonl", "loss"), "all_right": rates["all_right"],
                     "ci95": rates["ci95"]["all_right"], "params": params,
                     "attributes": {k: rates[k] for k in ("colour", "shape", "size", "motion")}})
        print(f"{conditioning}: {record['steps']} steps in {record['wall_minutes']} min, loss {rows[-1]['final_loss']:.4f}, "
              f"all right {rates['all_right']:.1%}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": shown_path(args.config, ROOT), "steps_per_variant": args.steps,
            "batch_size": base["train"]["batch_size"],
            "prompts": f"seen pairs, n={args.n}, seed 0", "hardware": record["hardware"]}
    (RESULTS / "conditioning.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "conditioning.md").write_text(table(rows, meta))
    plot(rows, RESULTS / "conditioning.png")
    print(f"wrote {RESULTS / 'conditioning'}.json, .md and .png")


def table(rows: list[dict], meta: dict) -> str:
    lines = [f"DiT conditioning at equal training steps and batches: {meta['steps_per_variant']} steps of "
             f"{meta['batch_size']} videos each on {meta['hardware']} (`{meta['recipe']}` at 16x64x64; checker on "
             f"{meta['prompts']}).", "",
             "| conditioning | params (DiT) | GFLOP / step | wall min | final loss | colour | shape | size | motion | "
             "all right (95% CI) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        low, high = r["ci95"]
        a = r["attributes"]
        lines.append(f"| {r['conditioning']} | {r['params'] / 1e6:.2f}M | {r['gflop_per_step']:.0f} | "
                     f"{r['wall_minutes']} | {r['final_loss']:.4f} | "
                     f"{a['colour']:.0%} | {a['shape']:.0%} | {a['size']:.0%} | {a['motion']:.0%} | "
                     f"**{r['all_right']:.1%}** [{low:.1%}, {high:.1%}] |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    value_and_rate_panels(path, [r["conditioning"] for r in rows], [r["final_loss"] for r in rows], "final training loss",
                          [r["all_right"] for r in rows], [r["ci95"] for r in rows], "checker all-right, seen (%)")


if __name__ == "__main__":
    main()
