"""The ``t2v`` command: parses options and calls the library; no model logic lives here."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from t2v.errors import T2VError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="t2v: text-to-video models you can train, sample, compare and measure.")
data_app = typer.Typer(no_args_is_help=True, help="Make datasets: Moving Shapes videos as mp4 + WebVid-style CSV.")
app.add_typer(data_app, name="data")
STATE = {"debug": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    STATE["debug"] = debug


def _check_output_folder(path: Path) -> None:
    folder = path.parent if path.suffix else path
    if not folder.is_dir():
        raise T2VError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise T2VError(f"output folder {folder} is not writable")


@app.command()
def generate(
    prompt: Optional[str] = typer.Argument(None, help="What the video shows."),
    output: Path = typer.Option(Path("outputs/video.mp4"), "-o", "--output", help="File to write (.mp4, .gif, .npy, .png)."),
    model: str = typer.Option("videogpt-shapes", "--model", "-m", help="Bundled model name or checkpoint directory."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same video)."),
    num_frames: Optional[int] = typer.Option(None, "--frames", help="Number of frames, where the model allows."),
    height: Optional[int] = typer.Option(None, "--height"),
    width: Optional[int] = typer.Option(None, "--width"),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="TSV of id<TAB>prompt lines: one video per line."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for --prompts videos."),
    fmt: str = typer.Option("mp4", "--format", help="Format for --prompts videos: mp4, gif or npy."),
    sheet: bool = typer.Option(False, "--sheet", help="Also write a PNG contact sheet beside the video."),
) -> None:
    """Generate a video from a prompt.

    Example: t2v generate "a red circle moving left" -o outputs/red.mp4 --seed 1
    """
    from t2v import load_pipeline
    from t2v.eval.shapes import read_prompts_tsv

    options = {"guidance": guidance} if guidance is not None else {}
    shape = dict(num_frames=num_frames, height=height, width=width)
    if prompts is not None:
        if out_dir is None:
            raise T2VError("--prompts needs --out DIR for the videos")
        if fmt not in ("mp4", "gif", "npy"):
            raise T2VError(f"--format must be mp4, gif or npy, got {fmt!r}")
        items = read_prompts_tsv(prompts)
        out_dir.mkdir(parents=True, exist_ok=True)
        _check_output_folder(out_dir)
        pipe = load_pipeline(model)
        videos = pipe.generate_batch([p for _, p in items], seed=seed, progress=True, **shape, **options)
        for (vid, _), video in zip(items, videos):
            video.save(out_dir / f"{vid}.{fmt}")
        typer.echo(f"wrote {len(videos)} videos to {out_dir}")
        return
    if prompt is None:
        raise T2VError("give a prompt, e.g. t2v generate \"a red circle moving left\", or --prompts FILE.tsv --out DIR")
    _check_output_folder(output)
    pipe = load_pipeline(model)
    start = time.perf_counter()
    video = pipe(prompt, seed=seed, **shape, **options)
    seconds = time.perf_counter() - start
    typer.echo(f"{pipe.name}: {video.num_frames}x{video.height}x{video.width} in {seconds:.2f} s")
    typer.echo(f"wrote {video.save(output)}")
    if sheet:
        typer.echo(f"wrote {video.save(output.with_suffix('.png'))}")


@app.command()
def train(
    family: str = typer.Argument(..., help="Model family, e.g. videogpt-vqvae, videogpt."),
    config: Path = typer.Option(..., "--config", "-c", help="YAML with model, data and train sections."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from the run's last checkpoint."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override train.steps."),
    out_dir: Optional[str] = typer.Option(None, "--out-dir", help="Override train.out_dir."),
) -> None:
    """Train a model family with the shared trainer.

    Example: t2v train videogpt-vqvae --config configs/videogpt_vqvae_shapes.yaml
    """
    from t2v.train import train_from_config

    overrides = {k: v for k, v in (("steps", steps), ("out_dir", out_dir)) if v is not None}
    path = train_from_config(family, config, resume=resume, overrides=overrides, log=typer.echo)
    typer.echo(f"model written to {path}")


@app.command()
def check(
    prompts: Path = typer.Argument(..., help="TSV of id<TAB>prompt lines."),
    video_dir: Path = typer.Argument(..., help="Folder holding id.mp4 / id.gif / id.npy."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Judge videos against their Moving Shapes prompts by pixel analysis.

    Example: t2v check prompts.tsv outputs/videos
    """
    from t2v.eval.shapes import score_directory

    report = score_directory(prompts, video_dir)
    typer.echo(report.format())
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


@app.command("eval")
def evaluate(
    model: str = typer.Argument(..., help="Bundled model name or checkpoint directory."),
    suite: List[str] = typer.Option(["shapes"], "--suite", help="Suites to run: shapes, recon, speed."),
    n: int = typer.Option(100, "-n", help="Prompts per prompt set."),
    seed: int = typer.Option(0, "--seed"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write all results as JSON."),
    out_dir: Optional[Path] = typer.Option(None, "--videos", help="Keep the generated videos (npy) here."),
) -> None:
    """Measure a model: checker rates on the project's prompt sets, and more.

    Example: t2v eval videogpt-shapes --json outputs/eval.json
    """
    from t2v.eval.run import run_suites

    results = run_suites(model, suite, n=n, seed=seed, video_dir=out_dir, log=typer.echo)
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")


@app.command()
def models() -> None:
    """List the bundled models and their measured scores.

    Example: t2v models
    """
    from t2v.checkpoint import read_config
    from t2v.pipelines.base import bundled_models, model_scores

    found = bundled_models()
    if not found:
        typer.echo("no bundled models found (set T2V_CHECKPOINTS to a folder of checkpoints)")
    for name, directory in found.items():
        family = read_config(directory)["family"]
        scores = model_scores(directory)
        summary = ", ".join(f"{k} {v}" for k, v in scores.get("summary", {}).items()) or "not measured yet"
        typer.echo(f"{name:20s} {family:16s} {summary}")


@data_app.command("shapes")
def data_shapes(
    out: Path = typer.Option(..., "--out", help="Folder to write videos/ and captions.csv into."),
    n: int = typer.Option(100, "-n", help="Number of videos."),
    seed: int = typer.Option(0, "--seed"),
    split: str = typer.Option("train", "--split", help="train, test (held-out pairs) or all."),
    level: int = typer.Option(1, "--level", help="1 or 2 objects per video."),
    num_frames: int = typer.Option(16, "--frames"),
    size: int = typer.Option(64, "--size", help="Frame height and width in pixels."),
) -> None:
    """Write Moving Shapes videos as H.264 mp4 plus a WebVid-style captions.csv.

    Example: t2v data shapes --out data/shapes -n 1000
    """
    from t2v.data.files import write_shapes_dataset

    out.mkdir(parents=True, exist_ok=True)
    csv = write_shapes_dataset(out, n, seed=seed, split=split, level=level, num_frames=num_frames, height=size, width=size)
    typer.echo(f"wrote {n} videos and {csv}")


def main() -> None:
    """Entry point: user errors print one line (no traceback unless --debug) and exit 2."""
    try:
        app()
    except T2VError as e:
        if STATE["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
