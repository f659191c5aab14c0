"""Tokenizer ablation at equal training steps: variants of a stage-1 recipe (reconstruction loss,
codebook size, ...) trained on the same batches from the same seed, then measured by the recon
suite on held-out-pair videos: PSNR, SSIM, codebook usage, and the checker on the reconstructions
(the ceiling of any prior drawn through that tokenizer).

    python benchmarks/tokenizer_ablation.py --steps 900 \
        --variant mse: --variant l1:l1_weight=1 --variant l1-k1024:l1_weight=1,codebook_size=1024
    # -> benchmarks/results/tokenizer_ablation.{json,md,png}

A variant is NAME:FIELD=VALUE,... over the config's ``model`` section (values parsed as YAML).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from plots import shown_path, value_and_rate_panels

from t2v.checkpoint import load_model
from t2v.eval.run import recon_suite
from t2v.train import train_from_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTES = ("colour", "shape", "size", "motion", "all_right")


def parse_variant(text: str) -> tuple[str, dict]:
    """'l1:l1_weight=1,codebook_size=1024' -> ('l1', {'l1_weight': 1, 'codebook_size': 1024})."""
    name, _, fields = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"a variant is NAME:FIELD=VALUE,..., got {text!r}")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} in variant {name!r} is not FIELD=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return name, overrides


def variant_config(base: dict, overrides: dict, steps: int, out_dir: Path) -> dict:
    spec = json.loads(json.dumps(base))  # a deep copy
    spec["model"] |= overrides
    spec["train"] |= {"steps": steps, "max_minutes": 0, "out_dir": str(out_dir), "checkpoint_every": steps,
                      "sample_every": 0, "warmup_steps": min(spec["train"].get("warmup_steps", 0), steps // 5)}
    return spec


def mean_of_last(log_path: Path, key: str, last: int = 20) -> float:
    values = [json.loads(line)[key] for line in log_path.read_text().splitlines() if key in json.loads(line)]
    return sum(values[-last:]) / len(values[-last:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "videogpt_vqvae_shapes.yaml")
    parser.add_argument("--steps", type=int, default=900, help="training steps per variant (batch size of the config)")
    parser.add_argument("--variant", dest="variants", type=parse_variant, action="append", required=True)
    parser.add_argument("-n", type=int, default=256, help="held-out-pair videos reconstructed per variant")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "tokenizer_ablation")
    parser.add_argument("--name", default="tokenizer_ablation", help="results file stem under benchmarks/results/")
    args = parser.parse_args()
    base = yaml.safe_load(args.config.read_text())
    rows = []
    for name, overrides in args.variants:
        out = args.out_dir / name
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(variant_config(base, overrides, args.steps, out)))
        (out / "log.jsonl").unlink(missing_ok=True)
        model_dir = train_from_config(base["family"], config_path)
        record = json.loads((model_dir / "training.json").read_text())["stages"][-1]
        recon = recon_suite(load_model(model_dir), n=args.n)
        checker = recon["checker_on_reconstructions"]
        rows.append({"variant": name, "overrides": overrides, "steps": record["steps"], "wall_minutes": record["wall_minutes"],
                     "final_mse": mean_of_last(out / "log.jsonl", "mse"), "psnr_db": recon["psnr_db"], "ssim": recon["ssim"],
                     "codebook_usage": recon.get("codebook_usage"), "checker": {k: checker[k] for k in ATTRIBUTES},
                     "ci95": checker["ci95"]["all_right"]})
        print(f"{name}: {record['steps']} steps in {record['wall_minutes']} min, PSNR {recon['psnr_db']:.2f} dB, "
              f"checker on reconstructions {checker['all_right']:.1%}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": shown_path(args.config, ROOT), "steps_per_variant": args.steps,
            "batch_size": base["train"]["batch_size"], "videos": f"{args.n} test-split (held-out pairs)",
            "hardware": record["hardware"]}
    stem = RESULTS / args.name
    stem.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table(rows, meta))
    plot(rows, stem.with_suffix(".png"))
    print(f"wrote {stem}.json, .md and .png")


def table(rows: list[dict], meta: dict) -> str:
    lines = [f"Tokenizer ablation at equal training steps: {meta['steps_per_variant']} steps of {meta['batch_size']} "
             f"videos each from `{meta['recipe']}` on {meta['hardware']}; measured on {meta['videos']} videos.", "",
             "| variant | overrides | wall min | final MSE | PSNR dB | SSIM | codebook use | colour | shape | "
             "all right on reconstructions (95% CI) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c, (low, high) = r["checker"], r["ci95"]
        use = "—" if r["codebook_usage"] is None else f"{r['codebook_usage']:.0%}"
        fields = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "(recipe)"
        lines.append(f"| {r['variant']} | {fields} | {r['wall_minutes']} | {r['final_mse']:.5f} | {r['psnr_db']:.2f} | "
                     f"{r['ssim']:.3f} | {use} | {c['colour']:.0%} | {c['shape']:.0%} | "
                     f"**{c['all_right']:.1%}** [{low:.1%}, {high:.1%}] |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    psnrs = [r["psnr_db"] for r in rows]
    value_and_rate_panels(path, [r["variant"] for r in rows], psnrs, "PSNR on held-out pairs (dB)",
                          [r["checker"]["all_right"] for r in rows], [r["ci95"] for r in rows],
                          "checker all-right on reconstructions (%)", value_ylim=(min(psnrs) - 2, max(psnrs) + 1))


if __name__ == "__main__":
    main()
