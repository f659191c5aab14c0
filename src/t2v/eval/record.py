"""Keep a checkpoint's measured scores beside it: ``scores.json`` and a section of its model card."""

from __future__ import annotations

import json
import re
from pathlib import Path

from t2v.checkpoint import atomic_write

SCORES_FILE = "scores.json"
CARD_FILE = "README.md"
SECTION = "## Measured scores"
RUN_FIELDS = ("model", "family", "precision", "rewrite")  # what a run_suites result says of the run, not a suite


def summarize(results: dict) -> dict:
    """The few figures ``t2v models`` prints: all-right rates per prompt set, PSNR, FVD, seconds per video."""
    summary = {}
    for key in shapes_keys(results):
        best_of = "" if key == "shapes" else f" best-of-{key.rsplit('_', 1)[1]}"
        for name, report in results[key].items():
            summary[f"{name} all-right{best_of}"] = round(report["all_right"], 3)
    if "recon" in results:
        summary["recon PSNR dB"] = round(results["recon"]["psnr_db"], 2)
        if "checker_on_reconstructions" in results["recon"]:
            summary["recon all-right"] = results["recon"]["checker_on_reconstructions"]["all_right"]
        if "checker_on_seen_reconstructions" in results["recon"]:
            summary["recon all-right seen"] = results["recon"]["checker_on_seen_reconstructions"]["all_right"]
    if "fvd" in results:
        for key in ("fvd_shapes", "fvd_i3d"):
            if key in results["fvd"]:
                summary[key.replace("_", "-")] = round(results["fvd"][key], 1)
    if "speed" in results:
        summary["s/video"] = round(results["speed"]["seconds_per_video"], 3)
    if "match" in results:
        summary["hard-negative accuracy, held-out pairs"] = round(results["match"]["test"]["all"], 3)
    return summary


def scores_markdown(results: dict, commands: list[str]) -> str:
    """The model card section: a table per prompt set with 95% intervals, then the other suites."""
    lines = [SECTION, "", "Measured with " + " and ".join(f"`{c}`" for c in commands) + ".", ""]
    for key in shapes_keys(results):
        if key != "shapes":
            lines += [f"Best of {key.rsplit('_', 1)[1]}: each video is the one of N candidates the video-text matcher "
                      "ranks first (`--candidates N`):", ""]
        vocabulary = next(iter(results[key].values())).get("rewrite")
        if vocabulary:
            lines += [f"Prompts rewritten into the {vocabulary} caption words first (`t2v.text.rewrite`; it changes "
                      "only prompts with words the training captions lack: the paraphrases):", ""]
        lines += ["| prompt set | colour | shape | size | motion | all right (95% CI) |", "| --- | --- | --- | --- | --- | --- |"]
        for name, r in results[key].items():
            low, high = r["ci95"]["all_right"]
            lines.append(f"| {name} ({r['count']}) | {r['colour']:.1%} | {r['shape']:.1%} | {r['size']:.1%} | "
                         f"{r['motion']:.1%} | **{r['all_right']:.1%}** [{low:.1%}, {high:.1%}] |")
        lines.append("")
    if "match" in results:
        m = results["match"]
        lines += [f"Rendered videos whose own caption outscores all {m['negatives']} captions one attribute away "
                  f"({m['videos']} videos per split), and per changed attribute:", "",
                  "| split | all | colour | shape | size | motion |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {name} | **{m[split]['all']:.1%}** | {m[split]['colour']:.1%} | {m[split]['shape']:.1%} | "
                  f"{m[split]['size']:.1%} | {m[split]['motion']:.1%} |"
                  for split, name in (("test", "test (held-out pairs)"), ("train", "train pairs"))]
        lines.append("")
    if "sizes" in results:
        lines += [f"Any size and duration ({results['sizes']['prompt_set']} prompts):", "", *sizes_table(results["sizes"]), ""]
    if "recon" in results:
        r = results["recon"]
        usage = f", codebook usage {r['codebook_usage']:.1%}" if "codebook_usage" in r else ""
        ceiling = r.get("checker_on_reconstructions")
        ceiling = (f"; the checker finds {ceiling['all_right']:.1%} of the reconstructions all right (colour "
                   f"{ceiling['colour']:.1%}, shape {ceiling['shape']:.1%}): what the tokenizer keeps of these "
                   "videos (a prior's draws can score higher, since it draws the training pairs' codes)") if ceiling else ""
        seen = r.get("checker_on_seen_reconstructions")
        ceiling += (f"; on as many seen-pair (train split) videos {seen['all_right']:.1%} (colour {seen['colour']:.1%}, "
                    f"shape {seen['shape']:.1%})") if seen else ""
        lines.append(f"- reconstruction on {r['videos']} {r['split']} videos: PSNR {r['psnr_db']:.2f} dB, "
                     f"SSIM {r['ssim']:.3f}{usage}{ceiling}")
    if "fvd" in results:
        fvd = results["fvd"]
        key = "fvd_shapes" if "fvd_shapes" in fvd else "fvd_i3d"
        name = "FVD-shapes (project classifier features, not I3D)" if key == "fvd_shapes" else "FVD (I3D features)"
        lines.append(f"- {name}: {fvd[key]:.1f} on {fvd['videos']} generated vs {fvd['videos']} test-split videos "
                     f"({fvd['seconds'] / 60:.1f} min)")
    if "speed" in results:
        r = results["speed"]
        lines.append(f"- speed: {r['seconds_per_video']:.3f} s per {r['video']} video (median, {r['threads']} threads, "
                     f"{r['cpu']}), peak RSS {r['peak_rss_mb']:.0f} MiB")
    return "\n".join(lines) + "\n"


def shapes_keys(results: dict) -> list[str]:
    """The shapes-suite results present: "shapes" (one draw per prompt) first, then "shapes_best_of_N" by N."""
    reranked = sorted((k for k in results if k.startswith("shapes_best_of_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return (["shapes"] if "shapes" in results else []) + reranked


def sizes_table(sizes: dict) -> list[str]:
    """Markdown rows of the sizes suite: checker rate per frames x height x width."""
    lines = ["| frames x height x width | all right (95% CI) | difference | s / video |", "| --- | --- | --- | --- |"]
    for size, row in sizes["sizes"].items():
        low, high = row["ci95"]["all_right"]
        lines.append(f"| {size} | {row['all_right']:.1%} [{low:.1%}, {high:.1%}] | "
                     f"{row['difference_from_first']:+.1%} | {row['seconds_per_video']:.2f} |")
    return lines


def suites_of(command: str) -> set[str]:
    """The scores.json suites a ``t2v eval`` command writes: its ``--suite`` names (shapes by default),
    shapes as ``shapes_best_of_N`` with ``--candidates N``."""
    names = re.findall(r"--suite[ =](\S+)", command) or ["shapes"]
    best_of = re.search(r"--candidates[ =](\d+)", command)
    if best_of and int(best_of.group(1)) > 1:
        names = [f"shapes_best_of_{best_of.group(1)}" if n == "shapes" else n for n in names]
    return set(names)


def still_stored(commands: list[str]) -> list[str]:
    """The commands (oldest first) whose results some suite still holds: one whose suites were all
    measured again by later commands goes."""
    kept, newer = [], set()
    for command in reversed(commands):
        suites = suites_of(command)
        if not suites <= newer:
            kept.append(command)
        newer |= suites
    return kept[::-1]


def record_scores(directory: str | Path, results: dict, command: str) -> None:
    """Merge ``results`` into ``directory/scores.json`` and rewrite the card's measured-scores section."""
    directory = Path(directory)
    path = directory / SCORES_FILE
    stored = json.loads(path.read_text()) if path.is_file() else {}
    suites = {**stored.get("suites", {}), **{k: v for k, v in results.items() if k not in RUN_FIELDS}}
    commands = stored.get("commands", [stored["command"]] if "command" in stored else [])
    commands = still_stored([c for c in commands if c != command] + [command])
    merged = {"summary": summarize(suites), "suites": suites, "commands": commands}
    _write_text(path, json.dumps(merged, indent=2) + "\n")
    card_path = directory / CARD_FILE
    card = card_path.read_text() if card_path.is_file() else f"# {directory.name}\n"
    _write_text(card_path, card_without_scores(card) + "\n" + scores_markdown(suites, commands))


def card_without_scores(card: str) -> str:
    """A model card with its measured-scores section taken out."""
    return re.sub(rf"\n{re.escape(SECTION)}\n.*?(?=\n## |\Z)", "", card, flags=re.S).rstrip("\n") + "\n"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
