"""Side by side with a public peer: video-diffusion-pytorch (Ho et al. 2022, lucidrains' Unet3D +
GaussianDiffusion) against our families (default: the VideoGPT prior) at matched trainable
parameter count, in one process, on the same 16x64x64 Moving Shapes batches. Writes JSON and a
PNG, prints a markdown table with the ratios. See benchmarks/README.md for what each figure means.

    bash benchmarks/setup_peers.sh   # once: the separate benchmark environment benchmarks/.venv-peers
    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 benchmarks/.venv-peers/bin/python benchmarks/peers.py --train-minutes 10
    ... benchmarks/peers.py --quick  # smoke run of a few minutes (writes benchmarks/results/peers_quick.json)

Both models are trained by our one training loop (``t2v.train.Trainer``: AdamW, warm-up + cosine
LR, gradient clipping) and conditioned on the same frozen all-MiniLM-L6-v2 text encoder: ours
through cross-attention on its token states (as configured), the peer through its own ``cond``
input (``Unet3D(cond_dim=384)``) on the pooled sentence vector, since its BERT conditioning is
downloaded from a hub at run time. Both drop 10% of captions for classifier-free guidance.
The peer samples with its own ancestral DDPM step on ``--peer-sample-steps`` of its 1000 training
timesteps, evenly respaced (Nichol & Dhariwal 2021); its default sampler walks all 1000.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from t2v.config import from_dict, load_yaml
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.eval.metrics import median_seconds, peak_memory_mb
from t2v.eval.shapes import prompt_set, score
from t2v.nn.pixels import frames_to_tensor, tensor_to_frames
from t2v.text import MiniLMEncoder, TextEncoderConfig, build_text_encoder
from t2v.train import TrainConfig, Trainer, build_model
from t2v.train.trainer import count_parameters, describe_hardware

STUB_DIR = Path(__file__).resolve().parent / "peers_stub"
OUT_DIR = "/tmp/t2v-benchmark"  # the trainer's out_dir; train_step alone writes nothing there
PROMPT = "a small red circle moving left"  # the prompt timed for seconds per video (as benchmarks/latency.py)


# ----------------------------------------------------------------------------- the peer
@contextlib.contextmanager
def torchvision_stub():
    """Put the torchvision stand-in on sys.path while the peer is imported, then take it away again:
    transformers decides from ``find_spec("torchvision")`` whether to import the real one."""
    sys.path.insert(0, str(STUB_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(STUB_DIR))
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]


def import_peer():
    """The peer's module (video_diffusion_pytorch.video_diffusion_pytorch), progress bars off."""
    with torchvision_stub():
        import video_diffusion_pytorch.video_diffusion_pytorch as peer
    peer.tqdm = lambda iterable, **_: iterable  # its sampler draws a bar per video
    return peer


class TimestepMap(nn.Module):
    """The denoiser seen through a respaced schedule: step i of the short chain is timestep ``timesteps[i]``."""

    def __init__(self, denoiser: nn.Module, timesteps: torch.Tensor) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.register_buffer("timesteps", timesteps, persistent=False)

    def forward_with_cond_scale(self, x, t, **kwargs):
        return self.denoiser.forward_with_cond_scale(x, self.timesteps[t], **kwargs)


class PeerVideoDiffusion(nn.Module):
    """video-diffusion-pytorch behind the trainer's interface: ``training_loss(batch)`` and ``generate(prompts)``."""

    family = "video-diffusion-pytorch"

    def __init__(self, peer, *, dim: int, timesteps: int = 1000, text_dropout: float = 0.1,
                 guidance: float = 2.0, sample_steps: int = 25, num_frames: int = 16, size_px: int = 64) -> None:
        super().__init__()
        self.peer, self.text_dropout, self.guidance, self.sample_steps = peer, text_dropout, guidance, sample_steps
        self.text_encoder = build_text_encoder(TextEncoderConfig(name="minilm", max_length=32))  # frozen, shared cache
        self.unet = peer.Unet3D(dim=dim, cond_dim=self.text_encoder.dim)
        self.diffusion = peer.GaussianDiffusion(self.unet, image_size=size_px, num_frames=num_frames,
                                                timesteps=timesteps, loss_type="l1")  # its defaults

    def cond(self, prompts: list[str]) -> torch.Tensor:
        return self.text_encoder(prompts).pooled.float()  # (B, 384)

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        video = (frames_to_tensor(batch["video"]) + 1) / 2  # (B, 3, T, H, W) in [0, 1], as the peer expects
        loss = self.diffusion(video, cond=self.cond(batch["caption"]), null_cond_prob=self.text_dropout)
        return loss, {"l1": loss.item()}

    def respaced(self, steps: int):
        """A GaussianDiffusion over ``steps`` evenly spaced timesteps of the trained 1000, sharing the denoiser."""
        full = self.diffusion
        if steps >= full.num_timesteps:
            return full
        used = torch.linspace(0, full.num_timesteps - 1, steps).round().long()
        alphas_cumprod = full.alphas_cumprod.double()[used]
        betas = 1 - alphas_cumprod / F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        schedule = self.peer.cosine_beta_schedule
        self.peer.cosine_beta_schedule = lambda timesteps, s=0.008: betas  # the constructor derives every buffer from it
        try:
            return self.peer.GaussianDiffusion(TimestepMap(self.unet, used), image_size=full.image_size,
                                               num_frames=full.num_frames, timesteps=steps, loss_type=full.loss_type)
        finally:
            self.peer.cosine_beta_schedule = schedule

    @torch.inference_mode()
    def generate(self, prompts: list[str], *, seed: int = 0, steps: int | None = None) -> torch.Tensor:
        """Prompts -> uint8 frames (B, T, H, W, 3) with the peer's sampler and classifier-free guidance."""
        torch.manual_seed(seed)  # the peer draws its noise from the global generator
        video = self.respaced(steps or self.sample_steps).sample(cond=self.cond(prompts), cond_scale=self.guidance)
        return tensor_to_frames(video * 2 - 1)  # its samples are in [0, 1]


def peer_params(peer, dim: int) -> int:
    return count_parameters(peer.Unet3D(dim=dim, cond_dim=384))


def matched_dim(peer, target: int) -> tuple[int, int]:
    """The peer's base width (a multiple of 8, for its GroupNorm(8)) whose parameter count is nearest ``target``."""
    candidates = []
    for dim in range(8, 257, 8):
        candidates.append((dim, peer_params(peer, dim)))
        if candidates[-1][1] > target:  # counts grow with dim: no need to build the larger ones
            break
    return min(candidates, key=lambda dp: abs(dp[1] - target))


# ----------------------------------------------------------------------------- measurements
class FixedBatches:
    """The same pre-drawn batches for every model, reused in turn (drawing data is left out of the
    step time); a smaller request is a slice, so gradient accumulation sees the same videos."""

    def __init__(self, stream: ShapesStream, batch_size: int, count: int) -> None:
        self.size = batch_size
        self.batches = [stream.batch(i * batch_size, batch_size) for i in range(count)]

    def batch(self, position: int, batch_size: int) -> dict:
        full, start = self.batches[(position // self.size) % len(self.batches)], position % self.size
        return {"video": full["video"][start:start + batch_size], "caption": full["caption"][start:start + batch_size]}

    def warm_text_cache(self, model: nn.Module) -> None:
        """Encode every caption with the model's frozen MiniLM encoders, so that their process-wide
        prompt cache holds them and text encoding is neither timed nor counted."""
        captions = [c for b in self.batches for c in b["caption"]]
        for module in model.modules():
            if isinstance(module, MiniLMEncoder):
                module(captions)


def step_seconds(trainer: Trainer, *, warmup: int, steps: int) -> tuple[list[float], float]:
    """Wall seconds of each of ``steps`` training steps after ``warmup`` (at least one) untimed ones,
    and the FLOPs of a step, counted on the first of those."""
    trainer.data.warm_text_cache(trainer.model)
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step()
    for _ in range(warmup - 1):
        trainer.train_step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return times, counter.get_total_flops()


def throughput(times: list[float], flops: float, batch_size: int) -> dict:
    median = statistics.median(times)
    return {"step_s": round(median, 4), "videos_per_s": round(batch_size / median, 3),
            "gflop_per_step": round(flops / 1e9, 1), "achieved_gflop_s": round(flops / 1e9 / median, 1),
            "times": [round(t, 4) for t in times]}


def train_for(trainer: Trainer, minutes: float, log) -> dict:
    """Train until ``minutes`` of wall time are spent (data drawn live, as in ``t2v train``)."""
    start = last_log = time.perf_counter()
    losses = []
    while time.perf_counter() - start < minutes * 60:
        losses.append(trainer.train_step()["loss"])
        if time.perf_counter() - last_log >= 60:
            last_log = time.perf_counter()
            log(f"  step {trainer.step}, loss {statistics.fmean(losses[-20:]):.4f}, {last_log - start:.0f} s")
    return {"minutes": minutes, "steps": trainer.step, "videos_seen": trainer.position,
            "final_loss": round(statistics.fmean(losses[-20:]), 5)}


def checker_rates(generate_batch, *, n: int, batch_size: int) -> dict:
    """Score ``n`` videos on the seen-pairs prompt set; video i is drawn with seed i."""
    items = prompt_set("seen", n=n)
    start, videos = time.perf_counter(), []
    for first in range(0, n, batch_size):
        prompts = [p for _, p in items[first:first + batch_size]]
        videos += list(generate_batch(prompts, first).numpy())
    report = score(zip(videos, (p for _, p in items)))
    return {**report.to_dict(), "prompt_set": "seen", "generation_s": round(time.perf_counter() - start, 1)}


# ----------------------------------------------------------------------------- the contenders
def train_config(section: dict, *, steps: int, **overrides) -> TrainConfig:
    """A YAML ``train`` section's optimisation settings for a run of ``steps`` on the CPU; no EMA
    (at a few hundred steps a 0.999 average still mostly holds the initial weights)."""
    cfg = from_dict(TrainConfig, section, where="train")
    return replace(cfg, steps=max(1, steps), ema_decay=0.0, device="cpu", out_dir=OUT_DIR,
                   warmup_steps=min(cfg.warmup_steps, max(1, steps // 10)), **overrides)


@dataclass
class Contender:
    """One model in the comparison: how to build it fresh, how it trains and how it samples."""

    name: str
    role: str  # "ours" or "peer"
    build: Callable[[], nn.Module]  # fresh weights, seeded
    generate: Callable[[nn.Module, list[str], int], torch.Tensor]  # (model, prompts, seed) -> uint8 (B, T, H, W, 3)
    warm_up: Callable[[nn.Module], object]  # what runs once before sampling is timed
    train_section: dict  # a YAML train section: lr, betas, weight decay, clipping, warm-up, bf16
    precisions: list[str]  # training precisions to time
    micro_batch: int  # videos per forward; the batch is reached by gradient accumulation
    timed_steps: tuple[int, int]  # (warm-up, timed) training steps
    sample_repeats: int
    eval_videos: int
    info: dict

    def train_config(self, batch: int, *, steps: int, threads: int, precision: str) -> TrainConfig:
        return train_config(self.train_section, steps=steps, batch_size=self.micro_batch, grad_accum=batch // self.micro_batch,
                            threads=threads, bf16=precision == "bf16")


def ours_contender(config_path: str, args) -> Contender:
    """One of our families, built and trained as its YAML config says (tokenizer from the config unless given)."""
    spec = load_yaml(config_path)
    section = {**spec["model"], **({"tokenizer": args.tokenizer} if args.tokenizer else {})}

    def build() -> nn.Module:
        torch.manual_seed(args.seed)
        return build_model(spec["family"], section)

    def generate(model: nn.Module, prompts: list[str], first_seed: int) -> torch.Tensor:
        generators = [torch.Generator().manual_seed(first_seed + i) for i in range(len(prompts))]
        return model.eval().generate(prompts, generators=generators)

    train = spec.get("train", {})
    info = {"family": spec["family"], "config": config_path, "tokenizer": section.get("tokenizer"),
            "sampling": {k: section[k] for k in ("guidance", "steps", "temperature", "top_k") if k in section}}
    return Contender(spec["family"], "ours", build, generate, lambda m: generate(m, [PROMPT], 0), train,
                     ["bf16" if train.get("bf16") else "fp32"], micro_batch=args.batch, timed_steps=(args.warmup, args.steps),
                     sample_repeats=args.sample_repeats, eval_videos=args.eval_videos, info=info)


def peer_contender(peer, dim: int, args, train_section: dict) -> Contender:
    """video-diffusion-pytorch at base width ``dim``, trained with our loop at its own learning rate."""

    def build() -> nn.Module:
        torch.manual_seed(args.seed)
        return PeerVideoDiffusion(peer, dim=dim, guidance=args.peer_guidance, sample_steps=args.peer_sample_steps)

    info = {"family": "video-diffusion-pytorch 0.7.0", "unet_dim": dim, "timesteps": 1000, "loss": "l1",
            "micro_batch": args.peer_micro_batch,
            "conditioning": "pooled all-MiniLM-L6-v2 (384-d) via Unet3D(cond_dim=384)",
            "sampling": {"steps": args.peer_sample_steps, "respaced_from": 1000, "guidance": args.peer_guidance}}
    return Contender("video-diffusion-pytorch", "peer", build, lambda m, prompts, seed: m.eval().generate(prompts, seed=seed),
                     lambda m: m.eval().generate([PROMPT], steps=2), {**train_section, "lr": args.peer_lr, "weight_decay": 0.0},
                     args.peer_precisions.split(","), micro_batch=args.peer_micro_batch,
                     timed_steps=(args.peer_warmup, args.peer_steps), sample_repeats=args.peer_sample_repeats,
                     eval_videos=args.peer_eval_videos, info=info)


# ----------------------------------------------------------------------------- report
def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def fastest(entry: dict) -> dict:
    """The training precision of a model with the highest throughput."""
    ok = [v for v in entry["train"].values() if "videos_per_s" in v]
    return max(ok, key=lambda v: v["videos_per_s"])


def ratios(ours: dict, peer: dict) -> dict:
    """Ours against the peer: training throughput (per peer precision and its fastest), sampling, checker."""
    mine = fastest(ours)["videos_per_s"]
    out = {f"train_vs_peer_{p}": ratio(mine, v.get("videos_per_s")) for p, v in peer["train"].items()}
    out["train_vs_peer_fastest"] = ratio(mine, fastest(peer)["videos_per_s"])
    out["sampling_speedup"] = ratio(peer["sampling"]["seconds_per_video"], ours["sampling"]["seconds_per_video"])
    if "checker" in ours and "checker" in peer:
        out["checker_all_right"] = ratio(ours["checker"]["all_right"], peer["checker"]["all_right"])
        out["checker_all_right_difference"] = round(ours["checker"]["all_right"] - peer["checker"]["all_right"], 3)
    return out


def _rate(entry: dict) -> str:
    if "checker" not in entry:
        return "—"
    c = entry["checker"]
    return f"{c['all_right']:.0%} [{c['ci95']['all_right'][0]:.0%}, {c['ci95']['all_right'][1]:.0%}] of {c['count']}"


def markdown(result: dict) -> str:
    """One row per model; ratios are ours / peer (sampling: peer seconds / ours)."""
    lines = ["| model | trainable params | training videos/s | s / video (batch 1) | GFLOP / training video "
             f"| steps in {result['train_minutes']:g} min | checker all-right (seen) | training ours/peer | sampling ours/peer |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in result["models"]:
        train = ", ".join(f"{v['videos_per_s']:.3g} ({p})" if "videos_per_s" in v else f"failed ({p})" for p, v in m["train"].items())
        params = f"{m['trainable_params'] / 1e6:.2f}M" + (f" (+{m['tokenizer_params'] / 1e6:.2f}M frozen tokenizer)"
                                                         if m.get("tokenizer_params") else "")
        steps = f" ({m['sampling']['steps']} steps)" if "steps" in m["sampling"] else ""
        r = result["ratios"].get(m["name"])
        train_ratio, sampling_ratio = (f"{r['train_vs_peer_fastest']:.3g}x", f"{r['sampling_speedup']:.3g}x") if r else ("", "")
        lines.append(f"| {m['name']} ({m['role']}) | {params} | {train} | {m['sampling']['seconds_per_video']:.3g}{steps} "
                     f"| {fastest(m)['gflop_per_step'] / result['batch_size']:.3g} | {m.get('trained', {}).get('steps', '—')} "
                     f"| {_rate(m)} | {train_ratio} | {sampling_ratio} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    names = [m["name"] for m in models]
    colours = ["tab:orange" if m["role"] == "peer" else "tab:blue" for m in models]
    panels = [("training videos/s, faster precision (log)", [fastest(m)["videos_per_s"] for m in models], "log"),
              ("seconds per video, batch 1 (log)", [m["sampling"]["seconds_per_video"] for m in models], "log")]
    if all("checker" in m for m in models):
        panels.append((f"checker all-right after {result['train_minutes']:g} min", [m["checker"]["all_right"] for m in models], None))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, (title, values, scale) in zip(axes, panels):
        bars = ax.bar(names, values, color=colours)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        if title.startswith("checker"):
            for i, m in enumerate(models):
                rate, (low, high) = m["checker"]["all_right"], m["checker"]["ci95"]["all_right"]
                ax.errorbar(i, rate, yerr=[[rate - low], [high - rate]], color="black", capsize=4)
            ax.set_ylim(0, 1)
        if scale:
            ax.set_yscale(scale)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(("QUICK SMOKE RUN, not a measurement: " if result["quick"] else "")
                 + f"{result['video']} Moving Shapes, batch {result['batch_size']}, {result['hardware']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=None,
                        help="one of our families as its YAML config (repeatable; default configs/videogpt_shapes.yaml); "
                             "the peer's size is matched to the first")
    parser.add_argument("--tokenizer", default=None,
                        help="stage-1 checkpoint directory replacing the config's (one --config only; videogpt's is runs/videogpt-vqvae/model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before timing (the first counts FLOPs)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (median reported)")
    parser.add_argument("--sample-repeats", type=int, default=3, help="timed batch-1 samples per model (median)")
    parser.add_argument("--eval-videos", type=int, default=50, help="videos scored per model of ours after --train-minutes")
    parser.add_argument("--eval-batch", type=int, default=10)
    parser.add_argument("--peer-dim", type=int, default=0, help="the peer's Unet3D base width; 0 matches our parameter count")
    parser.add_argument("--match", choices=("prior", "prior+tokenizer"), default="prior",
                        help="what the peer's parameter count is matched to")
    parser.add_argument("--peer-lr", type=float, default=1e-4, help="the peer's learning rate (its own trainer's default)")
    parser.add_argument("--peer-micro-batch", type=int, default=4,
                        help="videos per peer forward (~3 GB each in fp32); the batch by gradient accumulation")
    parser.add_argument("--peer-warmup", type=int, default=1, help="the peer's untimed training steps (~1-2 min each)")
    parser.add_argument("--peer-steps", type=int, default=3, help="the peer's timed training steps")
    parser.add_argument("--peer-sample-steps", type=int, default=25, help="respaced sampling steps (1000 = its default sampler)")
    parser.add_argument("--peer-sample-repeats", type=int, default=1, help="timed batch-1 peer samples (each is 2 x steps forwards)")
    parser.add_argument("--peer-eval-videos", type=int, default=20, help="videos scored for the peer (~2 s per forward)")
    parser.add_argument("--peer-guidance", type=float, default=2.0, help="the peer's cond_scale (its forward_with_cond_scale default)")
    parser.add_argument("--peer-precisions", default="fp32,bf16", help="peer training precisions to time")
    parser.add_argument("--peer-train-precision", default="fastest", choices=("fastest", "fp32", "bf16"),
                        help="the peer's precision in the --train-minutes run (fastest: of those timed)")
    parser.add_argument("--train-minutes", type=float, default=0.0, help="train each model this long, then score it (0 = skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="default benchmarks/results/peers.json (peers_quick.json with --quick)")
    parser.add_argument("--png", type=Path, default=None, help="default: the JSON path with .png")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 1, one timed step, 3 s of training, 2 videos")
    args = parser.parse_args()
    args.config = args.config or ["configs/videogpt_shapes.yaml"]
    if args.tokenizer and len(args.config) > 1:
        parser.error("--tokenizer replaces the tokenizer of a single --config; give each config its own instead")
    if args.quick:
        args.batch = args.peer_micro_batch = args.warmup = args.steps = args.sample_repeats = 1
        args.peer_warmup = args.peer_steps = args.peer_sample_repeats = 1
        args.peer_sample_steps = args.eval_videos = args.peer_eval_videos = args.eval_batch = 2
        args.train_minutes = args.train_minutes or 0.05
    if args.batch % args.peer_micro_batch:
        parser.error(f"--batch ({args.batch}) must be a multiple of --peer-micro-batch ({args.peer_micro_batch})")
    args.json = args.json or Path("benchmarks/results") / ("peers_quick.json" if args.quick else "peers.json")
    args.png = args.png or args.json.with_suffix(".png")
    torch.set_num_threads(args.threads)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    peer = import_peer()

    # our families, then the peer at the first one's size
    contenders, entries, built = [], [], {}
    for config_path in args.config:
        c = ours_contender(config_path, args)
        model = built[c.name] = c.build()
        entries.append({"name": c.name, "role": "ours", **c.info, "trainable_params": count_parameters(model),
                        "tokenizer_params": count_parameters(model.tokenizer, trainable_only=False),
                        "tokenizer_training": getattr(model, "earlier_stages", None) or "not recorded",
                        "train": {}})
        contenders.append(c)
    first = entries[0]
    target = first["trainable_params"] + (first["tokenizer_params"] if args.match == "prior+tokenizer" else 0)
    dim, count = (args.peer_dim, peer_params(peer, args.peer_dim)) if args.peer_dim else matched_dim(peer, target)
    c = peer_contender(peer, dim, args, contenders[0].train_section)
    contenders.append(c)
    built[c.name] = c.build()
    entries.append({"name": c.name, "role": "peer", **c.info, "trainable_params": count, "matched_to": f"{first['name']} {args.match}",
                    "lr": args.peer_lr, "train": {}})
    for e in entries:
        log(f"{e['name']}: {e['trainable_params']:,} trainable parameters")

    # training-step throughput on the same fixed batches
    batches = FixedBatches(ShapesStream(ShapesDataConfig(split="train")), args.batch, count=4)
    for c, entry in zip(contenders, entries):
        for precision in c.precisions:
            cfg = c.train_config(args.batch, steps=1000, threads=args.threads, precision=precision)
            warmup, steps = c.timed_steps
            try:
                times, flops = step_seconds(Trainer(built[c.name], batches, cfg, log=log), warmup=max(1, warmup), steps=steps)
            except Exception as error:  # noqa: BLE001 - a precision a model cannot train in is reported, not fatal
                entry["train"][precision] = {"error": f"{type(error).__name__}: {error}"}
                log(f"{c.name} {precision}: training step failed: {error}")
                continue
            entry["train"][precision] = throughput(times, flops, args.batch)
            log(f"{c.name} {precision}: {entry['train'][precision]['videos_per_s']} videos/s")

    # seconds per sampled video, batch 1, fp32 (the weights do not change the cost)
    for c, entry in zip(contenders, entries):
        c.warm_up(built[c.name])
        median, times = median_seconds(lambda: c.generate(built[c.name], [PROMPT], 0), repeats=c.sample_repeats, warmup=0)
        entry["sampling"] = {"seconds_per_video": round(median, 3), "times": [round(t, 3) for t in times]}
        log(f"{c.name}: {entry['sampling']['seconds_per_video']} s per video")
    peer_entry = entries[-1]
    peer_entry["sampling"]["steps"] = args.peer_sample_steps
    peer_entry["sampling"]["seconds_per_video_at_1000_steps_extrapolated"] = round(
        peer_entry["sampling"]["seconds_per_video"] * 1000 / args.peer_sample_steps, 1)
    built.clear()

    # equal wall time of training for each, then the checker on the seen-pairs prompts
    if args.train_minutes > 0:
        for c, entry in zip(contenders, entries):
            timed = {p: v for p, v in entry["train"].items() if "videos_per_s" in v}
            precision = (args.peer_train_precision if c.role == "peer" and args.peer_train_precision != "fastest"
                         else max(timed, key=lambda p: timed[p]["videos_per_s"]))
            steps = math.ceil(args.train_minutes * 60 / entry["train"][precision]["step_s"])  # the cosine schedule's length
            cfg = c.train_config(args.batch, steps=steps, threads=args.threads, precision=precision)
            model = c.build()
            log(f"training {c.name} ({precision}) for {args.train_minutes:g} min (~{steps} steps)")
            stream = ShapesStream(ShapesDataConfig(split="train"))  # the same examples in the same order for each
            entry["trained"] = {"precision": precision, **train_for(Trainer(model, stream, cfg, log=log), args.train_minutes, log)}
            log(f"scoring {c.name} on {c.eval_videos} videos")
            entry["checker"] = checker_rates(lambda prompts, seed: c.generate(model, prompts, seed),
                                             n=c.eval_videos, batch_size=args.eval_batch)
            log(f"{c.name}: all-right {entry['checker']['all_right']:.0%}")
            del model

    result = {"quick": args.quick, "command": " ".join(sys.argv), "hardware": describe_hardware(torch.device("cpu"), args.threads),
              "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
              "batch_size": args.batch, "video": "16x64x64", "data": "ShapesStream(ShapesDataConfig()) train split",
              "train_minutes": args.train_minutes, "models": entries,
              "ratios": {e["name"]: ratios(e, peer_entry) for e in entries if e["role"] == "ours"}}
    result["peak_rss_mb"] = round(peak_memory_mb(), 1)
    result["markdown"] = markdown(result)
    result["plot"] = str(args.png)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.png)
    print(("**Quick smoke run: not a measurement.**\n\n" if args.quick else "") + result["markdown"])
    log(f"wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
