"""``t2v eval MODEL``: the same measurements for every family, as one JSON-able dict."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from t2v.data.shapes import make_example
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.errors import T2VError
from t2v.hardware import cpu_name

SUITES = ("shapes", "fvd", "recon", "speed", "sizes", "match")
# (frames, height, width) the sizes suite compares with the default 16x64x64 (DiT / Sora issue)
SIZES = ((16, 64, 64), (16, 48, 80), (16, 80, 48), (8, 64, 64), (24, 64, 64))


def shapes_suite(pipe, *, n: int, seed: int, video_dir: Path | None, log, candidates: int = 1) -> dict:
    """Checker rates on each prompt set (held-out pairs, seen pairs, paraphrases, two objects); with
    ``candidates`` N > 1, each video is the matcher's pick of N."""
    from t2v.eval.shapes import PROMPT_SETS, prompt_set, score

    results = {}
    for name in PROMPT_SETS:
        items = prompt_set(name, n=n, seed=seed)
        start = time.perf_counter()
        videos = pipe.generate_batch([p for _, p in items], seed=seed, batch_size=16, progress=True,
                                     candidates=candidates)
        seconds = time.perf_counter() - start
        if video_dir is not None:
            (video_dir / name).mkdir(parents=True, exist_ok=True)
            for (vid, _), video in zip(items, videos):
                video.save(video_dir / name / f"{vid}.npy")
        report = score((v.frames, p) for v, (_, p) in zip(videos, items))
        results[name] = {**report.to_dict(), "seconds_per_video": seconds / len(items), "candidates": candidates,
                         "rewrite": getattr(pipe.rewriter, "vocabulary", None)}
        log(f"[{name}] {report.format()}")
    return results


def checker_rates(pipe, *, prompt_set_name: str = "seen", n: int = 100, seed: int = 0, **options) -> dict:
    """The checker's report on one prompt set, generated with ``options`` (size, steps, sampler, ...),
    plus the seconds per video it took."""
    from t2v.eval.shapes import prompt_set, score

    items = prompt_set(prompt_set_name, n=n, seed=seed)
    start = time.perf_counter()
    videos = pipe.generate_batch([p for _, p in items], seed=seed, batch_size=16, progress=True, **options)
    seconds = (time.perf_counter() - start) / len(items)
    return {**score((v.frames, p) for v, (_, p) in zip(videos, items)).to_dict(), "seconds_per_video": seconds}


def sizes_suite(pipe, *, n: int, seed: int, sizes=SIZES, prompt_set_name: str = "seen", log=print) -> dict:
    """Checker rates on one prompt set at each size and duration, for families that take any size.

    The checker judges size relative to the frame width and motion per frame, so rates compare
    across sizes; each row also gives its difference from the first size.
    """
    rows = {f"{t}x{h}x{w}": checker_rates(pipe, prompt_set_name=prompt_set_name, n=n, seed=seed, num_frames=t,
                                          height=h, width=w) for t, h, w in sizes}
    base = next(iter(rows.values()))["all_right"]
    for key, row in rows.items():
        row["difference_from_first"] = row["all_right"] - base
        low, high = row["ci95"]["all_right"]
        log(f"[sizes] {key}: all right {row['all_right']:.1%} [{low:.1%}, "
            f"{high:.1%}] ({row['difference_from_first']:+.1%} against {next(iter(rows))})")
    return {"prompt_set": prompt_set_name, "sizes": rows}


def fvd_suite(pipe, *, n: int = 512, seed: int = 0, weights: str | Path | None = None, batch_size: int = 16,
              log=print) -> dict:
    """FVD between ``n`` real one-object test-split videos and ``n`` videos generated from their captions.

    Features come from the bundled FVD-shapes classifier ("fvd_shapes", not comparable with I3D-FVD),
    or from I3D when ``weights`` names a local file ("fvd_i3d").
    """
    from t2v.eval.fvd import RESULT_KEY, frechet_distance, load_feature_net, video_features

    net = load_feature_net(weights)
    t, h, w = pipe.video_shape
    start = time.perf_counter()
    captions, real_batches = [], []
    for first in range(0, n, batch_size):  # real videos at the generated shape; the network resamples both alike
        frames, batch_captions = rendered_examples(range(seed + first, seed + min(n, first + batch_size)),
                                                   split="test", shape=(t, h, w))
        captions += batch_captions
        real_batches.append(frames.numpy())  # (b, T, H, W, 3)
    real = video_features(net, real_batches)
    videos = pipe.generate_batch(captions, seed=seed, batch_size=batch_size, progress=True)
    fake = video_features(net, (np.stack([v.frames for v in videos[i:i + batch_size]]) for i in range(0, n, batch_size)))
    key = RESULT_KEY[net.name]
    result = {key: frechet_distance(real, fake), "videos": n, "feature_net": net.name,
              "seconds": time.perf_counter() - start}
    log(f"[fvd] {key} {result[key]:.4g} on {n} generated vs {n} test-split videos ({net.name} features)")
    return result


def tokenizer_of(model):
    """The video tokenizer / autoencoder inside a model (or the model itself)."""
    for candidate in (model, getattr(model, "tokenizer", None)):
        if candidate is not None and hasattr(candidate, "reconstruct"):
            return candidate
    raise T2VError(f"{type(model).__name__} has no tokenizer to measure reconstruction of")


def rendered_examples(seeds, *, split: str, shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[str]]:
    """Moving Shapes videos (N, T, H, W, 3) uint8 of ``shape`` (T, H, W) for ``seeds``, and their captions."""
    t, h, w = shape
    examples = [make_example(s, split=split, num_frames=t, height=h, width=w) for s in seeds]
    return torch.from_numpy(np.stack([e.video for e in examples])), [e.caption for e in examples]


@torch.no_grad()
def recon_suite(model, *, n: int = 256, seed: int = 0, batch_size: int = 16, log=print) -> dict:
    """Reconstruction PSNR / SSIM and codebook usage on held-out-pair (test split) videos, and the
    checker's rates on the reconstructions against their captions: the ceiling of any prior that
    generates through this tokenizer (it cannot draw what the decoder cannot). The same ceiling is
    measured on as many seen-pair (train split) videos: the one that bounds the seen prompt set."""
    from t2v.eval.metrics import psnr, ssim
    from t2v.eval.shapes import score

    tok = tokenizer_of(model)
    cfg = tok.config
    psnrs, ssims, codes, judged = [], [], [], {"test": [], "train": []}
    for split in judged:
        for start in tqdm(range(0, n, batch_size), desc=f"recon {split}"):
            frames, captions = rendered_examples(range(seed + start, seed + min(n, start + batch_size)), split=split,
                                                 shape=(cfg.num_frames, cfg.height, cfg.width))
            recon = tok.reconstruct(frames)
            judged[split] += zip(recon.numpy(), captions)
            if split == "train":
                continue
            psnrs.append(psnr(frames, recon))
            ssims.append(ssim(frames, recon))
            if hasattr(tok, "encode") and hasattr(tok, "quantizer"):
                from t2v.nn.pixels import frames_to_tensor

                codes.append(tok.encode(frames_to_tensor(frames)).flatten())
    result = {"videos": n, "split": "test (held-out colour-shape pairs)", "psnr_db": torch.cat(psnrs).mean().item(),
              "ssim": torch.cat(ssims).mean().item()}
    if codes:
        result["codebook_usage"] = torch.unique(torch.cat(codes)).numel() / tok.quantizer.num_codes
    result["checker_on_reconstructions"] = score(judged["test"]).to_dict()
    result["checker_on_seen_reconstructions"] = score(judged["train"]).to_dict()
    log("[recon] checker all right on reconstructions: "
        f"held-out pairs {result['checker_on_reconstructions']['all_right']:.1%}, "
        f"seen pairs {result['checker_on_seen_reconstructions']['all_right']:.1%}")
    log("[recon] " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
                               if not k.startswith("checker")))
    return result


def match_suite(model, *, n: int = 256, seed: int = 0, log=print) -> dict:
    """A video-text matcher: how often a rendered video's own caption outscores 4 captions one attribute
    away, on held-out-pair (test split) and train-split videos, overall and per changed attribute."""
    from t2v.models.matcher import hard_negative_accuracy

    if model.family != "matcher":
        raise T2VError(f"the match suite measures video-text matchers; {model.family} is not one")
    result = {"videos": n, "negatives": 4}
    for split in ("test", "train"):
        result[split] = hard_negative_accuracy(model, split=split, n=n, seed=seed)
        log(f"[match] {split}: " + ", ".join(f"{k} {v:.1%}" for k, v in result[split].items()))
    return result


def train_throughput(model, video_shape: tuple[int, int, int], *, batch_size: int = 8, steps: int = 3) -> dict:
    """Training-step throughput (forward, backward, AdamW step) in videos/s; the model is restored afterwards."""
    from t2v.eval.metrics import median_seconds

    if not hasattr(model, "training_loss"):
        return {"train_videos_per_s": None, "train_note": f"{type(model).__name__} has no training_loss"}
    t, h, w = video_shape
    batch = ShapesStream(ShapesDataConfig(num_frames=t, height=h, width=w, labels=True)).batch(0, batch_size)
    saved, rng = {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss, _ = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    try:
        median, times = median_seconds(step, repeats=steps, warmup=1)
    finally:  # measuring must not change the model that the other suites sample from
        model.load_state_dict(saved)
        model.eval()
        torch.set_rng_state(rng)
    return {"train_videos_per_s": batch_size / median, "train_batch_size": batch_size, "train_step_times": times,
            "train_precision": "fp32"}


SPEED_PROMPT = "a small red circle moving left"  # the prompt that every seconds-per-video figure times


def speed_suite(pipe, *, repeats: int = 10, train_steps: int = 3, log=print) -> dict:
    """Seconds per video (median after warm-up) at the torch thread count in force, peak memory, and
    training-step throughput in videos/s."""
    from t2v.eval.metrics import median_seconds, peak_memory_mb

    median, times = median_seconds(lambda: pipe(SPEED_PROMPT, seed=0), repeats=repeats)
    t, h, w = pipe.video_shape
    result = {"seconds_per_video": median, "times": times, "threads": torch.get_num_threads(),
              "video": f"{t}x{h}x{w}", "cpu": cpu_name()}
    log(f"[speed] {median:.3f} s per {t}x{h}x{w} video (median of {repeats}, {result['threads']} threads)")
    result |= train_throughput(pipe.model, pipe.video_shape, steps=train_steps)
    if result["train_videos_per_s"] is None:
        log(f"[speed] no training throughput: {result['train_note']}")
    else:
        log(f"[speed] training: {result['train_videos_per_s']:.3g} videos/s (batch {result['train_batch_size']}, fp32)")
    result["peak_rss_mb"] = peak_memory_mb()  # after the training steps, which can raise the peak
    return result


def shapes_key(candidates: int) -> str:
    """Where the shapes suite's results live: "shapes", or "shapes_best_of_N" when reranked."""
    return "shapes" if candidates == 1 else f"shapes_best_of_{candidates}"


def run_suites(model: str, suites: list[str], *, n: int = 100, seed: int = 0, video_dir: Path | None = None,
               fvd_videos: int = 512, fvd_weights: str | Path | None = None, candidates: int = 1,
               reranker: str | Path = "matcher-shapes", precision: str = "float32", rewrite: str | None = "auto",
               log=print) -> dict:
    """Run the named suites on a bundled model name or checkpoint directory.

    ``fvd_videos`` real and generated videos enter FVD; ``fvd_weights`` (a local I3D file) replaces FVD-shapes.
    ``candidates`` N > 1 reranks the shapes suite's videos (best of N by the matcher ``reranker``).
    ``precision`` is the pipeline's sampling precision: float32 (what records hold), bf16 or auto (what
    ``t2v generate`` uses); the results name the one that ran. ``rewrite`` is the pipeline's prompt
    rewriting ("auto": into the checkpoint's caption vocabulary, as ``t2v generate`` does; "off").
    """
    from t2v.checkpoint import load_model
    from t2v.pipelines import pipeline_class
    from t2v.pipelines.base import resolve_model, resolve_rewrite

    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise T2VError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
    directory = resolve_model(model)
    loaded = load_model(directory)
    results: dict = {"model": directory.name, "family": loaded.family}
    if "match" in suites:
        results["match"] = match_suite(loaded, seed=seed, log=log)
    if "recon" in suites:
        results["recon"] = recon_suite(loaded, seed=seed, log=log)
    if not hasattr(loaded, "generate"):
        return results  # a tokenizer / autoencoder: nothing to generate
    vocabulary = resolve_rewrite(rewrite, directory)
    pipe = pipeline_class(loaded.family)(loaded, name=directory.name, directory=directory, reranker=reranker,
                                         precision=precision, rewrite=vocabulary)
    results["precision"], results["rewrite"] = pipe.precision, vocabulary
    for suite in suites:
        if suite == "shapes":
            results[shapes_key(candidates)] = shapes_suite(pipe, n=n, seed=seed, video_dir=video_dir, log=log,
                                                           candidates=candidates)
        elif suite == "fvd":
            results["fvd"] = fvd_suite(pipe, n=fvd_videos, seed=seed, weights=fvd_weights, log=log)
        elif suite == "speed":
            results["speed"] = speed_suite(pipe, log=log)
        elif suite == "sizes":
            if not hasattr(pipe.model, "check_size"):
                raise T2VError(f"{directory.name} generates one fixed size; the sizes suite needs a model that takes "
                               "any size (DiT)")
            results["sizes"] = sizes_suite(pipe, n=n, seed=seed, log=log)
    return results
