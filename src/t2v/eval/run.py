"""``t2v eval MODEL``: the same measurements for every family, as one JSON-able dict."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from t2v.data.shapes import make_example
from t2v.errors import T2VError

SUITES = ("shapes", "recon", "speed")


def shapes_suite(pipe, *, n: int, seed: int, video_dir: Path | None, log) -> dict:
    """Checker rates on each prompt set (held-out pairs, seen pairs, paraphrases, two objects)."""
    from t2v.eval.shapes import PROMPT_SETS, prompt_set, score

    results = {}
    for name in PROMPT_SETS:
        items = prompt_set(name, n=n, seed=seed)
        start = time.perf_counter()
        videos = pipe.generate_batch([p for _, p in items], seed=seed, batch_size=16, progress=True)
        seconds = time.perf_counter() - start
        if video_dir is not None:
            (video_dir / name).mkdir(parents=True, exist_ok=True)
            for (vid, _), video in zip(items, videos):
                video.save(video_dir / name / f"{vid}.npy")
        report = score((v.frames, p) for v, (_, p) in zip(videos, items))
        results[name] = {**report.to_dict(), "seconds_per_video": seconds / len(items)}
        log(f"[{name}] {report.format()}")
    return results


def tokenizer_of(model):
    """The video tokenizer / autoencoder inside a model (or the model itself)."""
    for candidate in (model, getattr(model, "tokenizer", None)):
        if candidate is not None and hasattr(candidate, "reconstruct"):
            return candidate
    raise T2VError(f"{type(model).__name__} has no tokenizer to measure reconstruction of")


@torch.no_grad()
def recon_suite(model, *, n: int = 256, seed: int = 0, batch_size: int = 16, log=print) -> dict:
    """Reconstruction PSNR / SSIM and codebook usage on held-out-pair (test split) videos."""
    from t2v.eval.metrics import psnr, ssim

    tok = tokenizer_of(model)
    cfg = tok.config
    psnrs, ssims, codes = [], [], []
    for start in tqdm(range(0, n, batch_size), desc="recon"):
        frames = torch.from_numpy(np.stack([
            make_example(seed + i, split="test", num_frames=cfg.num_frames, height=cfg.height, width=cfg.width).video
            for i in range(start, min(n, start + batch_size))]))
        recon = tok.reconstruct(frames)
        psnrs.append(psnr(frames, recon))
        ssims.append(ssim(frames, recon))
        if hasattr(tok, "encode") and hasattr(tok, "quantizer"):
            from t2v.nn.pixels import frames_to_tensor

            codes.append(tok.encode(frames_to_tensor(frames)).flatten())
    result = {"videos": n, "split": "test (held-out colour-shape pairs)", "psnr_db": torch.cat(psnrs).mean().item(),
              "ssim": torch.cat(ssims).mean().item()}
    if codes:
        result["codebook_usage"] = torch.unique(torch.cat(codes)).numel() / tok.quantizer.num_codes
    log(f"[recon] " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
    return result


def speed_suite(pipe, *, repeats: int = 10, log=print) -> dict:
    """Seconds per video (median after warm-up) at the torch thread count in force, and peak memory."""
    from t2v.eval.metrics import median_seconds, peak_memory_mb

    median, times = median_seconds(lambda: pipe("a small red circle moving left", seed=0), repeats=repeats)
    t, h, w = pipe.video_shape
    result = {"seconds_per_video": median, "times": times, "threads": torch.get_num_threads(),
              "video": f"{t}x{h}x{w}", "peak_rss_mb": peak_memory_mb(), "cpu": platform.processor() or platform.machine()}
    log(f"[speed] {median:.3f} s per {t}x{h}x{w} video (median of {repeats}, {result['threads']} threads)")
    return result


def run_suites(model: str, suites: list[str], *, n: int = 100, seed: int = 0, video_dir: Path | None = None,
               log=print) -> dict:
    """Run the named suites on a bundled model name or checkpoint directory."""
    from t2v.checkpoint import load_model
    from t2v.pipelines import pipeline_class
    from t2v.pipelines.base import resolve_model

    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise T2VError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
    directory = resolve_model(model)
    loaded = load_model(directory)
    results: dict = {"model": directory.name, "family": loaded.family}
    if "recon" in suites:
        results["recon"] = recon_suite(loaded, seed=seed, log=log)
    if not hasattr(loaded, "generate"):
        return results  # a tokenizer / autoencoder: nothing to generate
    pipe = pipeline_class(loaded.family)(loaded, name=directory.name, directory=directory)
    for suite in suites:
        if suite == "shapes":
            results["shapes"] = shapes_suite(pipe, n=n, seed=seed, video_dir=video_dir, log=log)
        elif suite == "speed":
            results["speed"] = speed_suite(pipe, log=log)
    return results
