"""Tokenizer ablation: variants of a stage-1 recipe (reconstruction loss, codebook size, ...) trained
for the same steps on the same batches from the same seed, then measured by the recon
suite on held-out-pair videos: PSNR, SSIM, codebook usage, and the checker on the reconstructions
(the ceiling of any prior drawn through that tokenizer), the latter also on seen-pair videos.

    python benchmarks/tokenizer_ablation.py --steps 900 \
        --variant mse: --variant l1:l1_weight=1 --variant l1-k1024:l1_weight=1,codebook_size=1024
    # -> benchmarks/results/tokenizer_ablation.{json,md,png}

A variant is NAME:FIELD=VALUE,... over the config's ``model`` section (values parsed as YAML), or over
its data section with data.FIELD=VALUE; ``--set data:FIELD=VALUE`` and ``--set train:FIELD=VALUE``
change those sections for every variant.
``--measure NAME:DIR`` adds a row for a tokenizer that is already trained (a stage-1 checkpoint, or
the one inside a bundled model, e.g. recipe:checkpoints/videogpt-shapes), with its training record.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml
from plots import mean_of_last, shown_path, value_and_rate_panels

from t2v.checkpoint import load_model, read_training_stages
from t2v.eval.run import recon_suite, tokenizer_of
from t2v.train import train_from_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTES = ("colour", "shape", "size", "motion", "all_right")
MEASURED_SETTINGS = ("codebook_size", "l1_weight", "edge_weight", "chroma_weight")  # shown for a --measure row


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


def parse_section(text: str) -> tuple[str, dict]:
    """'data:recolour=0.5' -> ('data', {'recolour': 0.5})."""
    section, fields = parse_variant(text)
    if section not in ("train", "data"):
        raise argparse.ArgumentTypeError(f"--set takes train:... or data:..., got {text!r}")
    return section, fields


def variant_config(base: dict, overrides: dict, steps: int, out_dir: Path, sections: list | None = None) -> dict:
    spec = json.loads(json.dumps(base))  # a deep copy
    for section, fields in sections or []:  # --set train:...,  --set data:...
        spec[section] = spec.get(section, {}) | fields
    for key, value in overrides.items():  # FIELD is the model's; data.FIELD the data section's
        section, _, name = key.rpartition(".")
        spec.setdefault(section or "model", {})[name] = value
    spec["train"] |= {"steps": steps, "max_minutes": 0, "out_dir": str(out_dir), "checkpoint_every": steps,
                      "sample_every": 0, "warmup_steps": min(spec["train"].get("warmup_steps", 0), steps // 5)}
    return spec


def parse_measured(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition(":")
    if not (name and sep and directory):
        raise argparse.ArgumentTypeError(f"--measure takes NAME:DIR, got {text!r}")
    return name, Path(directory)


def row(name: str, overrides: dict, record: dict, recon: dict, *, final_mse: float | None) -> dict:
    checker = recon["checker_on_reconstructions"]
    print(f"{name}: {record.get('steps')} steps in {record.get('wall_minutes')} min, PSNR {recon['psnr_db']:.2f} dB, "
          f"checker on reconstructions {checker['all_right']:.1%}")
    return {"variant": name, "overrides": overrides, "steps": record.get("steps"), "wall_minutes": record.get("wall_minutes"),
            "command": (record.get("command") or "").replace(f"{ROOT}/", "") or None, "hardware": record.get("hardware"), "final_mse": final_mse,
            "psnr_db": recon["psnr_db"], "ssim": recon["ssim"], "codebook_usage": recon.get("codebook_usage"),
            "checker": {k: checker[k] for k in ATTRIBUTES}, "ci95": checker["ci95"]["all_right"],
            "checker_seen": {k: v for k, v in recon.get("checker_on_seen_reconstructions", {}).items() if k in ATTRIBUTES}}


def measured_row(name: str, directory: Path, n: int) -> dict:
    """A row for an already trained tokenizer: its stage-1 training record, and the recon suite now."""
    model = load_model(directory)
    tokenizer = tokenizer_of(model)
    stages = [s for s in read_training_stages(directory) if s.get("family") == tokenizer.family]
    overrides = {k: getattr(tokenizer.config, k) for k in MEASURED_SETTINGS if hasattr(tokenizer.config, k)}
    log = directory.parent / "log.jsonl"  # where this script (or a plain `t2v train`) left the training log
    return row(name, {"measured": str(directory), **overrides}, stages[-1] if stages else {}, recon_suite(model, n=n),
               final_mse=mean_of_last(log, "mse") if log.is_file() else None)


def command_line(argv: list[str]) -> str:
    """The command that measured a table, without its ``--note`` (which the page prints on its own)."""
    kept = [a for i, a in enumerate(argv) if a != "--note" and (i == 0 or argv[i - 1] != "--note")]
    return "python benchmarks/tokenizer_ablation.py " + " ".join(shlex.quote(a) for a in kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "videogpt_vqvae_shapes.yaml")
    parser.add_argument("--steps", type=int, default=900, help="training steps per variant (batch size of the config)")
    parser.add_argument("--variant", dest="variants", type=parse_variant, action="append", default=[])
    parser.add_argument("--set", dest="sections", type=parse_section, action="append", default=[],
                        metavar="SECTION:FIELD=VALUE,...",
                        help="overrides of the config's train or data section for every variant, e.g. train:bf16=true")
    parser.add_argument("--measure", type=parse_measured, action="append", default=[],
                        help="NAME:DIR of a trained tokenizer (or of a model holding one) to measure beside the variants")
    parser.add_argument("-n", type=int, default=256, help="held-out-pair videos reconstructed per variant")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "tokenizer_ablation")
    parser.add_argument("--name", default="tokenizer_ablation", help="results file stem under benchmarks/results/")
    parser.add_argument("--note", default="", help="a line printed under the table (how a measured row was trained, say)")
    args = parser.parse_args()
    if not args.variants and not args.measure:
        parser.error("give at least one --variant or --measure")
    base = yaml.safe_load(args.config.read_text())
    rows = [measured_row(name, directory, args.n) for name, directory in args.measure]
    for name, overrides in args.variants:
        out = args.out_dir / name
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(variant_config(base, overrides, args.steps, out, args.sections)))
        (out / "log.jsonl").unlink(missing_ok=True)
        model_dir = train_from_config(base["family"], config_path)
        record = json.loads((model_dir / "training.json").read_text())["stages"][-1]
        rows.append(row(name, overrides, record, recon_suite(load_model(model_dir), n=args.n),
                        final_mse=mean_of_last(out / "log.jsonl", "mse")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": shown_path(args.config, ROOT), "steps_per_variant": args.steps if args.variants else None,
            "batch_size": base["train"]["batch_size"], "videos": f"{args.n} test-split (held-out pairs) and {args.n} train-split (seen pairs)",
            "hardware": next((r["hardware"] for r in rows[::-1] if r["hardware"]), "unrecorded"),
            "command": command_line(sys.argv[1:]),
            "note": args.note}
    stem = RESULTS / args.name
    stem.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table(rows, meta))
    plot(rows, stem.with_suffix(".png"))
    print(f"wrote {stem}.json, .md and .png")


def seen_cell(checker: dict | None) -> str:
    """The ceiling on seen-pair (train split) videos; rows measured before it was recorded have none."""
    if not checker:
        return "—"
    return f"{checker['colour']:.0%}, {checker['shape']:.0%}, **{checker['all_right']:.1%}**"


def table(rows: list[dict], meta: dict) -> str:
    lines = [f"Tokenizer ablation of `{meta['recipe']}` (batches of {meta['batch_size']} videos; training on "
             f"{meta['hardware']}; the steps of each row in its column); measured on {meta['videos']} videos.", "",
             "| variant | settings | steps | wall min | final MSE | PSNR dB | SSIM | codebook use | colour | shape | "
             "all right on reconstructions (95% CI) | seen pairs: colour, shape, all right |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c, (low, high) = r["checker"], r["ci95"]
        use = "—" if r["codebook_usage"] is None else f"{r['codebook_usage']:.0%}"
        fields = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "(recipe)"
        mse = "—" if r["final_mse"] is None else f"{r['final_mse']:.5f}"
        lines.append(f"| {r['variant']} | {fields} | {r['steps']} | {r['wall_minutes']} | {mse} | {r['psnr_db']:.2f} | "
                     f"{r['ssim']:.3f} | {use} | {c['colour']:.0%} | {c['shape']:.0%} | "
                     f"**{c['all_right']:.1%}** [{low:.1%}, {high:.1%}] | {seen_cell(r.get('checker_seen'))} |")
    lines += ["", *([meta["note"], ""] if meta.get("note") else []), f"Command: `{meta['command']}`."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    psnrs = [r["psnr_db"] for r in rows]
    value_and_rate_panels(path, [r["variant"] for r in rows], psnrs, "PSNR on held-out pairs (dB)",
                          [r["checker"]["all_right"] for r in rows], [r["ci95"] for r in rows],
                          "checker all-right on reconstructions (%)", value_ylim=(min(psnrs) - 2, max(psnrs) + 1))


if __name__ == "__main__":
    main()
