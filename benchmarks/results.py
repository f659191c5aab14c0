"""Write docs/results.md (and its plots) from what the benchmarks and `t2v eval --record` measured.

    python benchmarks/results.py            # reads checkpoints/*/scores.json, benchmarks/results/*.json

Nothing here measures anything: every figure comes from a JSON file written by a command, and
the page names those commands. `make results` runs them all, then this script.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open

from t2v.eval.record import sizes_table

ROOT = Path(__file__).resolve().parents[1]
PROMPT_SETS = ("held_out", "seen", "paraphrase", "two_objects")


def load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def parameter_count(directory: Path) -> int:
    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        return sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def bundled_rows(checkpoints: Path) -> list[dict]:
    """One row per bundled checkpoint that has measured scores."""
    rows = []
    for directory in sorted(d for d in checkpoints.iterdir() if (d / "config.json").is_file()):
        scores = load_json(directory / "scores.json").get("suites", {})
        stages = load_json(directory / "training.json").get("stages", [])
        rows.append({"name": directory.name, "family": load_json(directory / "config.json")["family"],
                     "params": parameter_count(directory), "scores": scores, "stages": stages,
                     "size_mb": sum(f.stat().st_size for f in directory.iterdir()) / 2**20})
    return rows


def _rate(report: dict | None) -> str:
    if not report:
        return "—"
    low, high = report["ci95"]["all_right"]
    return f"{report['all_right']:.0%} [{low:.0%}, {high:.0%}]"


def models_table(rows: list[dict]) -> str:
    head = ("| model | family | params | held-out | seen | paraphrase | two objects | FVD-shapes | recon PSNR | "
            "s/video | training | hardware |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for row in rows:
        if "shapes" not in row["scores"]:
            continue  # not a generator (e.g. the FVD-shapes classifier)
        s = row["scores"]
        shapes = s.get("shapes", {})
        fvd = s.get("fvd", {}).get("fvd_shapes")
        recon = s.get("recon", {}).get("psnr_db")
        speed = s.get("speed", {})
        minutes = sum(stage.get("wall_minutes", 0) for stage in row["stages"])
        hardware = sorted({stage.get("hardware", "?") for stage in row["stages"]})
        lines.append(" | ".join([
            f"| `{row['name']}`", row["family"], f"{row['params'] / 1e6:.1f}M",
            *(_rate(shapes.get(name)) for name in PROMPT_SETS),
            f"{fvd:.1f}" if fvd is not None else "—",
            f"{recon:.2f} dB" if recon is not None else "—",
            f"{speed['seconds_per_video']:.2f} ({speed['threads']} thr)" if speed else "—",
            f"{minutes:.0f} min" if minutes else "—", ", ".join(hardware) or "—"]) + " |")
        for key in (k for k in s if k.startswith("shapes_best_of_")):  # reranked draws of the same model
            lines.append(" | ".join([f"| `{row['name']}`, best of {key.rsplit('_', 1)[1]}", row["family"], "+ matcher",
                                     *(_rate(s[key].get(name)) for name in PROMPT_SETS), *["—"] * 5]) + " |")
    return "\n".join(lines)


def checker_plot(rows: list[dict], out: Path) -> Path | None:
    """Grouped bars: all-right rate per prompt set per model, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if r["scores"].get("shapes")]
    if not measured:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(measured)
    for i, row in enumerate(measured):
        reports = [row["scores"]["shapes"].get(name) for name in PROMPT_SETS]
        rates = [r["all_right"] if r else 0 for r in reports]
        errors = [[r["all_right"] - r["ci95"]["all_right"][0] if r else 0 for r in reports],
                  [r["ci95"]["all_right"][1] - r["all_right"] if r else 0 for r in reports]]
        ax.bar([x + i * width for x in range(len(PROMPT_SETS))], rates, width, yerr=errors, capsize=3, label=row["name"])
    ax.set_xticks([x + width * (len(measured) - 1) / 2 for x in range(len(PROMPT_SETS))], PROMPT_SETS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("all-right rate (checker)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def latency_section(results: Path) -> str:
    lines = []
    for path in sorted(results.glob("latency_*.json")):
        r = load_json(path)
        precision = r.get("precision", "float32")
        extra = f", {precision}" if precision != "float32" else ""
        if "steps" in r:
            extra += f", {r['steps']} steps"
        if "tokens_per_video" in r:
            extra += f"; {r['tokens_per_video']} tokens per video"
        if "seconds_per_video_without_kv_cache" in r:
            extra += (f"; without the KV cache {r['seconds_per_video_without_kv_cache']:.2f} s "
                      f"({r['kv_cache_speedup']:.1f}x slower)")
        option = f" --precision {precision}" if precision != "float32" else ""
        lines.append(f"- `{r['model']}`: **{r['seconds_per_video']:.3f} s** per {r['video']} video, median of "
                     f"{r['repeats']} after warm-up, {r['threads']} threads on {r['cpu']}{extra}; peak RSS "
                     f"{r['peak_rss_mb']:.0f} MiB (`python benchmarks/latency.py --model {r['model']}{option}`)")
    return "\n".join(lines)


EQUAL_MINUTES_COMMAND = ("OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 benchmarks/.venv-peers/bin/python benchmarks/peers.py "
                         "--tokenizer checkpoints/videogpt-shapes --train-minutes 10 --peer-precisions bf16 --peer-steps 2 "
                         "--peer-sample-steps 10 --peer-eval-videos 10 --eval-videos 50 "
                         "--json benchmarks/results/peers_equal_minutes.json")


def generic_section(path: Path, command: str) -> str:
    """A benchmark that brings its own markdown table (``"markdown"`` key) and plot (``"plot"``)."""
    r = load_json(path)
    if not r:
        return f"Not measured yet: run `{command}`."
    parts = [r.get("markdown", "```\n" + json.dumps(r, indent=2)[:3000] + "\n```"), "", f"Command: `{command}`."]
    if r.get("quick"):
        parts.append("**These figures come from a `--quick` smoke run, not a full measurement.**")
    if r.get("plot"):  # plots live beside the JSON; the page is in docs/
        parts.append(f"\n![{path.stem}](../benchmarks/results/{Path(r['plot']).name})")
    return "\n".join(parts)


def file_sections(results: Path, pattern: str, command: str) -> str:
    """Each ``pattern`` markdown table a benchmark wrote, with its plot, or how to measure it."""
    parts = []
    for md in sorted(results.glob(pattern)):
        parts += [md.read_text().strip(), ""]
        if md.with_suffix(".png").is_file():
            parts += [f"![{md.stem}](../benchmarks/results/{md.with_suffix('.png').name})", ""]
    return "\n".join(parts + [f"Command: `{command}`."]) if parts else f"Not measured yet: run `{command}`."


def failures_section(results: Path) -> str:
    """Each model's failure analysis: its tables, the shape-confusion plot and the sheet of failed videos."""
    parts = []
    for md in sorted(results.glob("failures_*.md")):
        parts += [md.read_text().strip(), ""]
        for png in (md.with_suffix(".png"), md.with_name(f"{md.stem}_sheet.png")):
            if png.is_file():
                parts += [f"![{png.stem}](../benchmarks/results/{png.name})", ""]
    return "\n".join(parts) if parts else "Not measured yet: run `python benchmarks/failures.py --model MODEL`."


def sizes_section(checkpoints: Path) -> str:
    """The sizes suite of every bundled model that has one (DiT: any size and duration)."""
    parts = []
    for scores_path in sorted(checkpoints.glob("*/scores.json")):
        sizes = load_json(scores_path).get("suites", {}).get("sizes")
        if not sizes:
            continue
        parts += [f"`{scores_path.parent.name}`, {sizes['prompt_set']} prompts "
                  f"(`t2v eval {scores_path.parent.name} --suite sizes`):", "", *sizes_table(sizes), ""]
    return "\n".join(parts) or "Not measured yet: run `t2v eval dit-shapes --suite sizes`."


def inner_continuity(r: dict) -> str:
    """The within-segment baseline of a stories result, when it was measured."""
    if "inner_continuity" not in r:
        return ""
    lo, hi = r["inner_continuity_ci95"]
    return (f"; the same test on the {r['inner_pairs']} pairs of consecutive frames inside the segments passes "
            f"{r['inner_continuity']:.1%} [{lo:.1%}, {hi:.1%}]")


def stories_section(results: Path) -> str:
    lines = []
    for path in sorted(results.glob("stories_*.json")):
        r = load_json(path)
        lo, hi = r["segments_right_ci95"]
        clo, chi = r["continuity_ci95"]
        lines += [f"- `{r['model']}`, {r['stories']} two-prompt stories with a change of direction: segments right for "
                  f"their own prompt **{r['segments_right']:.1%}** [{lo:.1%}, {hi:.1%}], both segments right "
                  f"{r['stories_both_right']:.1%}, seam continuity (centroid moves <= {r['seam_limit_px']:.1f} px) "
                  f"**{r['continuity']:.1%}** [{clo:.1%}, {chi:.1%}]{inner_continuity(r)} "
                  f"(`python benchmarks/stories.py --model {r['model']}`)",
                  f"\n![{path.stem}](../benchmarks/results/{path.stem}.png)"]
    return "\n".join(lines) or "Not measured yet: run `python benchmarks/stories.py --model phenaki-shapes`."


def serve_section(results: Path) -> str:
    command = "python benchmarks/serve_load.py --clients 20 --seconds 60"
    r = load_json(results / "serve_load.json")
    if not r:
        return f"Not measured yet: run `{command}`."
    lat, rss = r["latency_s"], r["rss_mb"]
    return "\n".join([
        "| clients x seconds | served | p50 / p95 latency | busy answers | other errors | half-written files | server RSS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {r['clients']} x {r['seconds']:g} s | {r['requests_served']} ({r['served_per_s']:.2f}/s) | "
        f"{lat['p50']:.2f} / {lat['p95']:.2f} s | {r['busy_answers']} | {r['other_errors']} | {r['partial_files']} | "
        f"{rss['before']:.0f} -> {rss['after']:.0f} MiB ({rss['growth_pct']:+.1f}%) |", "",
        f"`t2v serve` with `{r['model']}`, queue {r['server']['max_queue']}, {r['cpu_count']} CPU cores; latency "
        f"includes the wait in the queue. Command: `{command}`."])


def data_section(results: Path) -> str:
    r = load_json(results / "data.json")
    if not r:
        return "Not measured yet: run `python benchmarks/data.py`."
    rates = ", ".join(f"{k} workers {v:.0f}" for k, v in r["clips_per_second"].items())
    waits = ", ".join(f"{t['workers']} workers {t['wait_share']:.1%}" for t in r["training"])
    return (f"Decoded clips/s from shards ({r['clip']}, {r['threads']} threads): {rates}. Share of a training step "
            f"spent waiting for data: {waits} (`python benchmarks/data.py`).\n\n"
            "![data](../benchmarks/results/data.png)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = bundled_rows(args.checkpoints)
    plot = checker_plot(rows, args.out.parent / "results_checker.png")
    page = [
        "# Results", "",
        "Generated by `python benchmarks/results.py` from the JSON that each command below wrote; "
        "`make results` re-runs them all. Rates are the checker's all-right rate on 100 prompts per set "
        "with 95% Wilson intervals. FVD-shapes uses the project's own Moving Shapes classifier as the "
        "feature network: it is **not** I3D-FVD and not comparable with papers.", "",
        "## Bundled models", "", models_table(rows), "",
        "Per model: `t2v eval MODEL --suite shapes --suite fvd --suite recon --suite speed --record` "
        "(stored in `checkpoints/MODEL/scores.json`); training time and hardware from `checkpoints/MODEL/training.json`.", "",
    ]
    if plot:
        page += [f"![checker rates]({plot.name})", ""]
    page += ["## Latency", "", latency_section(args.results) or "Not measured yet.", "",
             "## Any size and duration", "", sizes_section(args.checkpoints), "",
             "## Sampling precision", "",
             file_sections(args.results, "precision_*.md", "python benchmarks/precision.py --model MODEL"), "",
             "## Samplers and sampling steps", "",
             file_sections(args.results, "samplers_*.md", "python benchmarks/samplers.py --model MODEL"), "",
             "## Best of N: reranking by the video-text matcher", "",
             "Each pipeline can draw N candidates per prompt and keep the one the video-text matcher "
             "(`checkpoints/matcher-shapes`, trained on the train split only) ranks closest to the prompt "
             "(`--candidates N`). The oracle keeps a right candidate whenever one of the N is: the most any reranker "
             "could get from those draws.", "",
             file_sections(args.results, "rerank_*.md", "python benchmarks/rerank.py --model MODEL"), "",
             "## Where the models fail", "", failures_section(args.results), "",
             "## Paraphrases: what the frozen text encoder grounds, and the prompt rewriter", "",
             "Every generator reads prompts through frozen all-MiniLM-L6-v2 and never sees a paraphrase word in "
             "training; what it can make of one is what the encoder's space says of it. This measures that space "
             "alone: the nearest training caption to each prompt, and the rewrite into the training captions' "
             "words that pipelines make by default for models trained on Moving Shapes (`t2v.text.rewrite`; "
             "`--rewrite off` turns it off). The paraphrase rates of the bundled models above are measured with "
             "it; rerank tables without `_rewritten` in their name were measured before it existed.", "",
             file_sections(args.results, "text_grounding.md", "python benchmarks/text_grounding.py -n 100"), "",
             "## Guidance, temperature and top-k (tuning prompts)", "",
             "Each sweep ran on the weights bundled at the time. The guidance sweeps of the three models (with "
             "temperature for `videogpt-shapes`, choice temperature for `phenaki-shapes`) were re-run on the bundles "
             "shipped now and confirm their defaults (guidance 4, 3 and 3) within the intervals; the low-temperature "
             "and top-k sweeps of `videogpt-shapes` ran before its stage 2b (see its model card).", "",
             file_sections(args.results, "sweep_*.md", "python benchmarks/sweep.py --model MODEL --guidance 1.5 3 5 8"), "",
             "## DiT conditioning (adaLN-Zero, in-context, cross-attention)", "",
             file_sections(args.results, "conditioning.md", "python benchmarks/conditioning.py --steps 600"), "",
             "## Tokenizer ablations: the ceiling under each prior", "",
             "The checker on the reconstructions of held-out-pair videos bounds what any prior drawn through that "
             "tokenizer can score; tables measured since the recon suite judges seen-pair (train split) videos too "
             "give that ceiling in their last column.", "",
             file_sections(args.results, "tokenizer_ablation*.md",
                           "python benchmarks/tokenizer_ablation.py --config CONFIG --steps N --variant NAME:FIELD=VALUE "
                           "--measure NAME:DIR"), "",
             "## Stories", "", stories_section(args.results), "",
             "## Data throughput from shards", "", data_section(args.results), "",
             "## Web server under load", "", serve_section(args.results), "",
             "## Side by side with a public peer (video-diffusion-pytorch)", "",
             generic_section(args.results / "peers.json", "benchmarks/setup_peers.sh && "
                             "benchmarks/.venv-peers/bin/python benchmarks/peers.py"), "",
             "### At equal training minutes", "",
             generic_section(args.results / "peers_equal_minutes.json", EQUAL_MINUTES_COMMAND), "",
             "## Compute: achieved FLOP/s against the machine's matmul peak", "",
             generic_section(args.results / "flops.json", "python benchmarks/flops.py"), ""]
    args.out.write_text("\n".join(page))
    print(f"wrote {args.out}")
    readme = ROOT / "README.md"
    if update_between_markers(readme, models_table(rows)):
        print(f"updated the results table in {readme}")


def update_between_markers(path: Path, text: str, name: str = "results") -> bool:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a file."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text()
    if start not in content or end not in content:
        return False
    before, rest = content.split(start, 1)
    path.write_text(f"{before}{start}\n{text}\n{end}{rest.split(end, 1)[1]}")
    return True


if __name__ == "__main__":
    main()
