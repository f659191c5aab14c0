"""The ``t2v`` command: parses options and calls the library; no model logic lives here."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from t2v import DEFAULT_MODEL
from t2v.errors import T2VError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="t2v: text-to-video models you can train, sample, compare and measure.")
data_app = typer.Typer(no_args_is_help=True, help="Make datasets: Moving Shapes videos as mp4 + WebVid-style CSV; "
                       "webdataset shards from a CSV or folder.")
app.add_typer(data_app, name="data")
STATE = {"debug": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    STATE["debug"] = debug


DEFAULT_OUTPUT = Path("outputs/video.mp4")
REWRITE_HELP = ("Rewrite prompts into the words of the model's training captions first: auto (the caption "
                "vocabulary its checkpoint names), off, or a vocabulary name (moving-shapes).")




@app.command()
def generate(
    prompt: Optional[List[str]] = typer.Argument(None, help="What the video shows (several with --story)."),
    output: Path = typer.Option(DEFAULT_OUTPUT, "-o", "--output", help="File to write (.mp4, .gif, .npy, .png)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Bundled model name or checkpoint directory."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same video)."),
    num_frames: Optional[int] = typer.Option(None, "--frames", help="Number of frames, where the model allows."),
    height: Optional[int] = typer.Option(None, "--height"),
    width: Optional[int] = typer.Option(None, "--width"),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Classifier-free guidance scale."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps, where the model has them (Phenaki: 12-48)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="Diffusion sampler: ddpm, ddim, dpm++, euler, flow-euler, flow-heun."),
    extend: Optional[Path] = typer.Option(None, "--extend", help="A video to continue forward in time (DiT)."),
    story: bool = typer.Option(False, "--story", help="One video following several prompts in turn (Phenaki)."),
    first_frame: Optional[Path] = typer.Option(None, "--first-frame", help="Image (or video) whose frame the video continues."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="TSV of id<TAB>prompt lines: one video per line."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for --prompts videos."),
    fmt: str = typer.Option("mp4", "--format", help="Format for --prompts videos: mp4, gif or npy."),
    sheet: bool = typer.Option(False, "--sheet", help="Also write a PNG contact sheet beside the video."),
    precision: str = typer.Option("auto", "--precision", help="auto, float32 or bf16 (auto: bf16 where it was "
                                  "measured faster at the same quality and the CPU has bfloat16 instructions)."),
    candidates: int = typer.Option(1, "--candidates", help="Draw N videos per prompt and keep the one the "
                                   "video-text matcher (--reranker) finds closest to the prompt."),
    reranker: str = typer.Option("matcher-shapes", "--reranker", help="Bundled matcher name or checkpoint directory."),
    rewrite: str = typer.Option("auto", "--rewrite", help=REWRITE_HELP),
) -> None:
    """Generate a video from a prompt.

    Example: t2v generate "a red circle moving left" -o outputs/red.mp4 --seed 1

    Story: t2v generate --model phenaki-shapes --story "a red circle moving left" "the red circle moving up"

    Any size, image prompt, extension: t2v generate --model dit-shapes "a red circle moving left" --frames 24
    --height 48 --width 80; --first-frame IMAGE; --extend VIDEO
    """
    from t2v import load_pipeline
    from t2v.eval.shapes import read_prompts
    from t2v.pipelines.base import check_prompt
    from t2v.video import check_output_path, check_writable_folder

    options = {k: v for k, v in (("guidance", guidance), ("steps", steps), ("sampler", sampler)) if v is not None}
    if candidates != 1:
        if story:
            raise T2VError("--candidates reranks single videos; a --story is drawn once")
        options["candidates"] = candidates
    shape = dict(num_frames=num_frames, height=height, width=width)
    if prompts is not None:
        if out_dir is None:
            raise T2VError("--prompts needs --out DIR for the videos")
        if fmt not in ("mp4", "gif", "npy"):
            raise T2VError(f"--format must be mp4, gif or npy, got {fmt!r}")
        items = read_prompts(prompts)
        out_dir.mkdir(parents=True, exist_ok=True)
        check_writable_folder(out_dir)
        pipe = load_pipeline(model, precision=precision, reranker=reranker, rewrite=rewrite)
        videos = pipe.generate_batch([p for _, p in items], seed=seed, progress=True, **shape, **options)
        for (vid, _), video in zip(items, videos):
            video.save(out_dir / f"{vid}.{fmt}")
        if pipe.last_rewrites:
            typer.echo(f"{len(pipe.last_rewrites)} of {len(items)} prompts rewritten into {pipe.name}'s caption words "
                       "(--rewrite off to give them as written)")
        typer.echo(f"wrote {len(videos)} videos to {out_dir}")
        return
    if not prompt:
        raise T2VError("give a prompt, e.g. t2v generate \"a red circle moving left\", or --prompts FILE.tsv --out DIR")
    if len(prompt) > 1 and not story:
        raise T2VError(f"got {len(prompt)} prompts: quote the prompt, or pass --story to follow them in turn")
    for text in prompt:
        check_prompt(text)
    if output == DEFAULT_OUTPUT:
        output.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(output)
    pipe = load_pipeline(model, precision=precision, reranker=reranker, rewrite=rewrite)
    if first_frame is not None:
        options["first_frame"] = first_frame
    start = time.perf_counter()
    if extend is not None:
        if not hasattr(pipe, "extend"):
            raise T2VError(f"{pipe.name} cannot extend a video; use a DiT model, e.g. --model dit-shapes")
        video = pipe.extend(extend, prompt[0], seed=seed, num_frames=num_frames, **options)
    elif story:
        if not hasattr(pipe, "story"):
            raise T2VError(f"{pipe.name} cannot follow a story; use a Phenaki model, e.g. --model phenaki-shapes")
        video = pipe.story(prompt, seed=seed, num_frames=num_frames, **options)
    else:
        video = pipe(prompt[0], seed=seed, **shape, **options)
    seconds = time.perf_counter() - start
    for asked, given in pipe.last_rewrites:
        typer.echo(f"prompt rewritten into {pipe.name}'s caption words: {asked!r} -> {given!r}")
    best_of = f", best of {candidates}" if candidates > 1 else ""
    typer.echo(f"{pipe.name}: {video.num_frames}x{video.height}x{video.width} in {seconds:.2f} s ({pipe.precision}{best_of})")
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
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun / accelerate launch, rank 0 alone writes it
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
    suite: List[str] = typer.Option(["shapes"], "--suite", help="Suites to run: shapes, fvd, recon, speed, sizes (any-size models), match (video-text matchers)."),
    n: int = typer.Option(100, "-n", help="Prompts per prompt set."),
    seed: int = typer.Option(0, "--seed"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write all results as JSON."),
    out_dir: Optional[Path] = typer.Option(None, "--videos", help="Keep the generated videos (npy) here."),
    record: bool = typer.Option(False, "--record", help="Store the results in the checkpoint's scores.json and model card."),
    fvd_weights: Optional[Path] = typer.Option(None, "--fvd-weights", help="Local I3D weights (.safetensors or .pt) "
                                               "for standard FVD; without it the fvd suite reports FVD-shapes."),
    candidates: int = typer.Option(1, "--candidates", help="shapes suite: best of N candidates per prompt, picked "
                                   "by the video-text matcher (stored apart, as shapes_best_of_N)."),
    reranker: str = typer.Option("matcher-shapes", "--reranker", help="Bundled matcher name or checkpoint directory."),
    rewrite: str = typer.Option("auto", "--rewrite", help=REWRITE_HELP),
    precision: str = typer.Option("float32", "--precision", help="Sampling precision: float32 (what --record "
                                  "stores), bf16, or auto (what t2v generate uses)."),
) -> None:
    """Measure a model: checker rates on the project's prompt sets, and more.

    Example: t2v eval videogpt-shapes --json outputs/eval.json
    """
    from t2v.eval.run import run_suites

    if record and precision != "float32":
        raise T2VError(f"--record stores float32 measurements; drop --record to measure at --precision {precision}")
    results = run_suites(model, suite, n=n, seed=seed, video_dir=out_dir, fvd_weights=fvd_weights,
                         candidates=candidates, reranker=reranker, precision=precision, rewrite=rewrite,
                         log=typer.echo)
    if record:
        from t2v.eval.record import record_scores
        from t2v.pipelines.base import resolve_model

        command = f"t2v eval {model} " + " ".join(f"--suite {name}" for name in suite) + f" -n {n} --seed {seed}"
        command += f" --candidates {candidates}" if candidates != 1 else ""
        command += f" --rewrite {rewrite}" if rewrite != "auto" else ""
        record_scores(resolve_model(model), results, command)
        typer.echo(f"recorded the scores in {resolve_model(model)}")
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")


@app.command()
def convert(
    source: Path = typer.Argument(..., help="Checkpoint directory (config.json + model.safetensors)."),
    out: Path = typer.Argument(..., help="Directory for the converted copy."),
    weights: str = typer.Option("int8", "--weights", help="Storage: float32, float16, or int8 (large weight "
                                "matrices as int8 with float16 row scales, the rest float16: about half of float16)."),
) -> None:
    """Copy a checkpoint with its weights stored in another precision; re-measure it (t2v eval) before use.

    Example: t2v convert runs/dit/model runs/dit-int8 --weights int8
    """
    from t2v.checkpoint import WEIGHTS_FILE, convert_checkpoint

    converted = convert_checkpoint(source, out, weights)
    before, after = (source / WEIGHTS_FILE).stat().st_size, (converted / WEIGHTS_FILE).stat().st_size
    typer.echo(f"wrote {converted} ({weights} weights: {after / 2**20:.1f} MiB, from {before / 2**20:.1f} MiB); "
               f"its scores are not carried over: measure them with t2v eval {converted} --record")


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


@data_app.command("shards")
def shards(
    source: Path = typer.Option(..., "--from", help="A WebVid-style captions.csv or a folder of videos with .txt captions."),
    out: Path = typer.Option(..., "--out", help="Folder for shard-NNNNNN.tar files."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Samples per shard."),
    num_frames: int = typer.Option(16, "--frames"),
    height: int = typer.Option(64, "--height"),
    width: int = typer.Option(64, "--width"),
    fps: float = typer.Option(8.0, "--fps"),
) -> None:
    """Write webdataset shards (KEY.mp4 + KEY.txt + KEY.json) decoded to a fixed fps, size and length.

    Example: t2v data shards --from data/shapes/captions.csv --out data/shards --shard-size 500
    """
    from t2v.data.shards import write_shards

    stats = write_shards(source, out, shard_size=shard_size, num_frames=num_frames, size=(height, width), fps=fps)
    typer.echo(f"wrote {stats['samples']} samples in {len(stats['shards'])} shards to {out}; "
               f"skipped {stats['skipped']} unreadable videos")


@data_app.command("encode")
def encode(
    model: Path = typer.Option(..., "--model", help="Stage-1 checkpoint: a VQ tokenizer or video VAE."),
    shards_dir: Path = typer.Option(..., "--shards", help="Folder of video shards (t2v data shards)."),
    out: Path = typer.Option(..., "--out", help="Folder for the shards of codes / latents."),
    batch_size: int = typer.Option(16, "--batch-size"),
) -> None:
    """Encode video shards once into codes or latents, so prior / denoiser training skips the encoder.

    Example: t2v data encode --model runs/videogpt-vqvae/model --shards data/shards --out data/codes
    (then train with `data: {shards: data/codes}`)
    """
    from t2v.checkpoint import load_model
    from t2v.data.shards import encode_shards

    stats = encode_shards(load_model(model).eval(), shards_dir, out, batch_size=batch_size)
    typer.echo(f"encoded {stats['samples']} samples of {stats['shards']} shards into {out}; "
               f"skipped {stats['skipped']} undecodable")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 opens it to your network."),
    port: int = typer.Option(7860, "--port"),
    max_queue: int = typer.Option(8, "--max-queue", help="Requests that may wait for the model; more get "
                                  "'busy, retry later' (HTTP 503)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds a request may take, waiting included (504 beyond)."),
    keep_minutes: float = typer.Option(30.0, "--keep-minutes", help="Minutes a generated video stays downloadable."),
) -> None:
    """Serve a web page and a JSON API (POST /generate, GET /models) for the bundled models.

    Example: t2v serve --port 7860, then open http://127.0.0.1:7860 (needs: pip install -e '.\\[web]')
    """
    from t2v.serve import require_web_extra

    require_web_extra()
    from t2v.serve.app import run
    from t2v.serve.service import ServeConfig

    run(ServeConfig(host=host, port=port, max_queue=max_queue, timeout_s=timeout, keep_minutes=keep_minutes),
        echo=typer.echo)


def main() -> None:
    """Entry point: user errors print one line (no traceback unless --debug) and exit 2."""
    # idle OpenMP threads sleep instead of spinning: spinning makes small ops crawl on a busy 2-core machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except T2VError as e:
        if STATE["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
