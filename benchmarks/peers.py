"""Side by side with a public peer: video-diffusion-pytorch (Ho et al. 2022, lucidrains' Unet3D +
GaussianDiffusion) against our VideoGPT prior at matched trainable parameter count, in one
process, on the same 16x64x64 Moving Shapes batches. Writes JSON and a PNG, prints a table.

    bash benchmarks/setup_peers.sh   # once: the separate benchmark environment benchmarks/.venv-peers
    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 benchmarks/.venv-peers/bin/python benchmarks/peers.py --train-minutes 20
    ... benchmarks/peers.py --quick  # seconds-long smoke run (writes benchmarks/results/peers_quick.json)

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
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from t2v.config import from_dict, load_yaml
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.eval.shapes import prompt_set, score
from t2v.nn.pixels import frames_to_tensor, tensor_to_frames
from t2v.text import TextEncoderConfig, build_text_encoder
from t2v.train import TrainConfig, Trainer, build_model
from t2v.train.trainer import count_parameters, describe_hardware

STUB_DIR = Path(__file__).resolve().parent / "peers_stub"
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
                 guidance: float = 2.0, sample_steps: int = 50, num_frames: int = 16, size_px: int = 64) -> None:
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
    """The same pre-drawn batches for every model (data cost left out of the step time), reused in turn."""

    def __init__(self, stream: ShapesStream, batch_size: int, count: int) -> None:
        self.batches = [stream.batch(i * batch_size, batch_size) for i in range(count)]

    def batch(self, position: int, batch_size: int) -> dict:
        return self.batches[(position // batch_size) % len(self.batches)]


def step_seconds(trainer: Trainer, *, warmup: int, steps: int) -> list[float]:
    """Wall seconds of each of ``steps`` training steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        trainer.train_step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return times


def throughput(times: list[float], batch_size: int) -> dict:
    median = statistics.median(times)
    return {"step_s": round(median, 4), "videos_per_s": round(batch_size / median, 3), "times": [round(t, 4) for t in times]}


def sample_seconds(generate, *, repeats: int) -> list[float]:
    generate()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate()
        times.append(time.perf_counter() - start)
    return times


def train_for(trainer: Trainer, minutes: float, log) -> dict:
    """Train until ``minutes`` of wall time are spent (data drawn live, as in ``t2v train``)."""
    start, losses = time.perf_counter(), []
    while time.perf_counter() - start < minutes * 60:
        losses.append(trainer.train_step()["loss"])
        if trainer.step % 50 == 0:
            log(f"  step {trainer.step}, loss {statistics.fmean(losses[-50:]):.4f}, {time.perf_counter() - start:.0f} s")
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


# ----------------------------------------------------------------------------- the two contenders
def ours_spec(config_path: str, tokenizer: str) -> tuple[dict, dict]:
    spec = load_yaml(config_path)
    model_section = {**spec["model"], "tokenizer": tokenizer}
    return model_section, spec.get("train", {})


def train_config(section: dict, args, *, steps: int, out_dir: str, **overrides) -> TrainConfig:
    """Our config's optimisation settings at this benchmark's batch, threads and length; no EMA
    (at a few hundred steps a 0.999 average still mostly holds the initial weights)."""
    cfg = from_dict(TrainConfig, section, where="train")
    return replace(cfg, steps=max(1, steps), batch_size=args.batch, threads=args.threads, ema_decay=0.0, device="cpu",
                   warmup_steps=min(cfg.warmup_steps, max(1, steps // 10)), out_dir=out_dir, **overrides)


def build_ours(model_section: dict, seed: int):
    torch.manual_seed(seed)
    return build_model("videogpt", model_section)


def build_peer(peer, dim: int, args, seed: int) -> PeerVideoDiffusion:
    torch.manual_seed(seed)
    return PeerVideoDiffusion(peer, dim=dim, guidance=args.peer_guidance, sample_steps=args.peer_sample_steps)


def ours_generate(model, prompts: list[str], seed: int) -> torch.Tensor:
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    return model.eval().generate(prompts, generators=generators)


# ----------------------------------------------------------------------------- report
def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def markdown(result: dict) -> str:
    ours, peer, r = result["ours"], result["peer"], result["ratios"]
    rows = [("trainable parameters", f"{ours['trainable_params'] / 1e6:.2f}M (+{ours['tokenizer_params'] / 1e6:.2f}M frozen tokenizer)",
             f"{peer['trainable_params'] / 1e6:.2f}M", ratio(ours["trainable_params"], peer["trainable_params"]))]
    for precision, value in peer["train"].items():
        mine = ours["train"][ours["train_precision"]]
        rows.append((f"training videos/s (ours {ours['train_precision']}, peer {precision})",
                     mine["videos_per_s"], value["videos_per_s"], r[f"train_vs_peer_{precision}"]))
    rows.append(("seconds per video (batch 1)", ours["sampling"]["seconds_per_video"],
                 f"{peer['sampling']['seconds_per_video']} ({peer['sampling']['steps']} steps)", r["sampling_speedup"]))
    if "checker" in ours:
        c = lambda m: f"{m['checker']['all_right']:.0%} [{m['checker']['ci95']['all_right'][0]:.0%}, {m['checker']['ci95']['all_right'][1]:.0%}]"  # noqa: E731
        rows += [(f"steps in {ours['trained']['minutes']:g} min", ours["trained"]["steps"], peer["trained"]["steps"],
                  ratio(ours["trained"]["steps"], peer["trained"]["steps"])),
                 (f"checker all-right, {ours['checker']['count']} seen prompts", c(ours), c(peer), r.get("checker_all_right"))]
    lines = ["| | ours (videogpt) | peer (video-diffusion-pytorch) | ours / peer |", "|---|---|---|---|"]
    lines += [f"| {name} | {a} | {b} | {'' if x is None else f'{x:g}x'} |" for name, a, b, x in rows]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, peer = result["ours"], result["peer"]
    panels = [("training videos/s", {f"ours {ours['train_precision']}": ours["train"][ours["train_precision"]]["videos_per_s"],
                                     **{f"peer {p}": v["videos_per_s"] for p, v in peer["train"].items()}}, None),
              ("seconds per video (log)", {"ours": ours["sampling"]["seconds_per_video"],
                                           f"peer {peer['sampling']['steps']} steps": peer["sampling"]["seconds_per_video"]}, "log")]
    if "checker" in ours:
        panels.append((f"checker all-right after {ours['trained']['minutes']:g} min",
                       {"ours": ours["checker"]["all_right"], "peer": peer["checker"]["all_right"]}, None))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, values, scale) in zip(axes, panels):
        colours = ["tab:blue" if k.startswith("ours") else "tab:orange" for k in values]
        ax.bar(list(values), list(values.values()), color=colours)
        if title.startswith("checker"):
            for i, m in enumerate((ours, peer)):
                lo, hi = m["checker"]["ci95"]["all_right"]
                ax.errorbar(i, m["checker"]["all_right"], yerr=[[m["checker"]["all_right"] - lo], [hi - m["checker"]["all_right"]]],
                            color="black", capsize=4)
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


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/videogpt_shapes.yaml", help="our model and optimiser settings")
    parser.add_argument("--tokenizer", default="runs/videogpt-vqvae/model", help="trained VQ-VAE checkpoint directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before timing")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (median reported)")
    parser.add_argument("--sample-repeats", type=int, default=3, help="timed batch-1 samples per model (median)")
    parser.add_argument("--peer-dim", type=int, default=0, help="the peer's Unet3D base width; 0 matches our parameter count")
    parser.add_argument("--match", choices=("prior", "prior+tokenizer"), default="prior",
                        help="what the peer's parameter count is matched to")
    parser.add_argument("--peer-lr", type=float, default=1e-4, help="the peer's learning rate (its own trainer's default)")
    parser.add_argument("--peer-sample-steps", type=int, default=50, help="respaced sampling steps (1000 = its default sampler)")
    parser.add_argument("--peer-guidance", type=float, default=2.0, help="the peer's cond_scale (its forward_with_cond_scale default)")
    parser.add_argument("--peer-precisions", default="fp32,bf16", help="peer training precisions to time")
    parser.add_argument("--train-minutes", type=float, default=0.0, help="train each model this long, then score it (0 = skip)")
    parser.add_argument("--eval-videos", type=int, default=50)
    parser.add_argument("--eval-batch", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="default benchmarks/results/peers.json (peers_quick.json with --quick)")
    parser.add_argument("--png", type=Path, default=None, help="default: the JSON path with .png")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run: tiny batch and step counts")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.warmup, args.steps, args.sample_repeats = 2, 1, 2, 1
        args.peer_sample_steps, args.eval_videos, args.eval_batch = 2, 2, 2
        args.train_minutes = args.train_minutes or 0.05
    args.json = args.json or Path("benchmarks/results") / ("peers_quick.json" if args.quick else "peers.json")
    args.png = args.png or args.json.with_suffix(".png")
    torch.set_num_threads(args.threads)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    peer = import_peer()

    model_section, train_section = ours_spec(args.config, args.tokenizer)
    ours = build_ours(model_section, args.seed)
    ours_params, tokenizer_params = count_parameters(ours), count_parameters(ours.tokenizer, trainable_only=False)
    target = ours_params + (tokenizer_params if args.match == "prior+tokenizer" else 0)
    dim, peer_count = (args.peer_dim, peer_params(peer, args.peer_dim)) if args.peer_dim else matched_dim(peer, target)
    log(f"ours: {ours_params:,} trainable (+{tokenizer_params:,} frozen tokenizer); peer Unet3D dim={dim}: {peer_count:,}")
    peer_model = build_peer(peer, dim, args, args.seed)

    stream = ShapesStream(ShapesDataConfig(split="train"))
    batches = FixedBatches(stream, args.batch, count=4)
    out = "/tmp/t2v-peers"  # the trainer's out_dir; nothing is written there by train_step
    ours_precision = "bf16" if train_section.get("bf16") else "fp32"
    result = {"quick": args.quick, "command": " ".join(sys.argv), "hardware": describe_hardware(torch.device("cpu"), args.threads),
              "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
              "batch_size": args.batch, "video": "16x64x64", "data": "ShapesStream(ShapesDataConfig()) train split",
              "ours": {"name": "videogpt", "config": args.config, "tokenizer": args.tokenizer,
                       "trainable_params": ours_params, "tokenizer_params": tokenizer_params,
                       "train_precision": ours_precision, "train": {},
                       "sampling_settings": {"guidance": ours.config.guidance, "tokens": ours.num_tokens, "kv_cache": True}},
              "peer": {"name": "video-diffusion-pytorch 0.7.0", "unet_dim": dim, "matched_to": args.match,
                       "trainable_params": peer_count, "timesteps": 1000, "loss": "l1", "lr": args.peer_lr,
                       "conditioning": "pooled all-MiniLM-L6-v2 (384-d) via Unet3D(cond_dim=384)", "train": {},
                       "sampling_settings": {"steps": args.peer_sample_steps, "respaced_from": 1000, "guidance": args.peer_guidance}}}

    # training-step throughput on the same fixed batches
    log("timing training steps")
    for name, model, precisions, lr in (("ours", ours, [ours_precision], None),
                                        ("peer", peer_model, args.peer_precisions.split(","), args.peer_lr)):
        for precision in precisions:
            cfg = train_config(train_section, args, steps=1000, out_dir=out, bf16=precision == "bf16", **({"lr": lr} if lr else {}))
            try:
                times = step_seconds(Trainer(model, batches, cfg, log=log), warmup=args.warmup, steps=args.steps)
            except Exception as error:  # noqa: BLE001 - a precision the peer cannot train in is reported, not fatal
                result[name]["train"][precision] = {"error": f"{type(error).__name__}: {error}"}
                log(f"  {name} {precision}: failed: {error}")
                continue
            result[name]["train"][precision] = throughput(times, args.batch)
            log(f"  {name} {precision}: {result[name]['train'][precision]['videos_per_s']} videos/s")
    peer_ok = {p: v for p, v in result["peer"]["train"].items() if "videos_per_s" in v}
    peer_precision = max(peer_ok, key=lambda p: peer_ok[p]["videos_per_s"])

    # seconds per sampled video, batch 1 (fp32, weights do not change the cost)
    log("timing sampling")
    for name, generate in (("ours", lambda: ours_generate(ours, [PROMPT], 0)), ("peer", lambda: peer_model.generate([PROMPT]))):
        times = sample_seconds(generate, repeats=args.sample_repeats)
        result[name]["sampling"] = {"seconds_per_video": round(statistics.median(times), 3), "times": [round(t, 3) for t in times]}
    peer_sampling = result["peer"]["sampling"]
    peer_sampling["steps"] = args.peer_sample_steps
    peer_sampling["seconds_per_video_at_1000_steps_extrapolated"] = round(peer_sampling["seconds_per_video"] * 1000 / args.peer_sample_steps, 1)

    # equal wall time of training, then the checker
    if args.train_minutes > 0:
        del ours, peer_model
        for name, precision in (("ours", ours_precision), ("peer", peer_precision)):
            step_s = result[name]["train"][precision]["step_s"]
            steps = math.ceil(args.train_minutes * 60 / step_s)  # sets the cosine schedule's length
            model = build_ours(model_section, args.seed) if name == "ours" else build_peer(peer, dim, args, args.seed)
            cfg = train_config(train_section, args, steps=steps, out_dir=out, bf16=precision == "bf16",
                               **({"lr": args.peer_lr} if name == "peer" else {}))
            log(f"training {name} ({precision}) for {args.train_minutes:g} min (~{steps} steps)")
            result[name]["trained"] = {"precision": precision, **train_for(Trainer(model, stream, cfg, log=log), args.train_minutes, log)}
            generate_batch = (lambda prompts, seed, m=model: ours_generate(m, prompts, seed)) if name == "ours" else (
                lambda prompts, seed, m=model: m.eval().generate(prompts, seed=seed))
            log(f"scoring {name} on {args.eval_videos} videos")
            result[name]["checker"] = checker_rates(generate_batch, n=args.eval_videos, batch_size=args.eval_batch)
            del model

    ours_r, peer_r = result["ours"], result["peer"]
    result["ratios"] = {**{f"train_vs_peer_{p}": ratio(ours_r["train"][ours_precision]["videos_per_s"], v.get("videos_per_s"))
                           for p, v in peer_r["train"].items()},
                        "sampling_speedup": ratio(peer_r["sampling"]["seconds_per_video"], ours_r["sampling"]["seconds_per_video"])}
    if "checker" in ours_r:
        result["ratios"]["checker_all_right"] = ratio(ours_r["checker"]["all_right"], peer_r["checker"]["all_right"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.png)
    print(("**Quick smoke run: not a measurement.**\n\n" if args.quick else "") + markdown(result))
    log(f"wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
