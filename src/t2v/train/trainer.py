"""The one training loop every family reuses.

A family model only provides ``training_loss(batch) -> (loss, logs)`` (and optionally
``preview(batch) -> uint8 frames`` for the sample grid). The loop owns AdamW, warm-up + cosine
LR, gradient clipping and accumulation, EMA weights, bf16 autocast, progress, sample grids and
atomic checkpoints that resume *exactly*: model, optimiser, scheduler, EMA, RNG states and data
position all live in one safetensors file written with ``os.replace``.

Under ``torchrun`` or ``accelerate launch`` the same loop runs data-parallel through Hugging Face
``accelerate`` (DDP; FSDP on GPUs with ``distributed: fsdp``): each process reads its own slice of
every global batch, gradients are averaged across processes, and only rank 0 writes checkpoints,
logs and samples. The global batch is batch_size x processes x grad_accum.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from t2v.checkpoint import TRAINING_FILE, load_tensors, save_model, save_tensors
from t2v.data.workers import worker_loader
from t2v.errors import T2VError
from t2v.hardware import bf16_is_fast, describe_hardware
from t2v.train.collapse import CollapseWatch

STATE_FILE = "train_state.safetensors"


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping; the global batch is batch_size x grad_accum."""

    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 disables EMA weights
    bf16: bool = False
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    device: str = "auto"
    log_every: int = 10
    sample_every: int = 0  # 0 disables sample grids
    checkpoint_every: int = 100
    max_minutes: float = 0.0  # stop early (with a checkpoint) after this wall time; 0 = no limit
    # "steps": cosine decay over ``steps``; "time": over ``max_minutes`` of training (a wall-time budget,
    # for hardware whose speed is not known ahead: the run ends decayed whatever steps it reached)
    lr_schedule: str = "steps"
    workers: int = 0  # processes that prepare the next batches ahead (a GPU outruns one CPU core's rendering)
    seed: int = 0
    out_dir: str = "runs/model"
    init_from: str = ""  # fine-tune: start from this trained model directory's weights (optimiser and schedule start fresh)
    # with init_from: a model of the same family on another tokenizer (a VAE of other latent shape, say):
    # copy the parameters whose names and shapes match; the rest (a DiT's patch embedding and output layer)
    # and every buffer (the latent statistics of the new tokenizer) keep their fresh values
    init_partial: bool = False
    decoder_only: bool = False  # tokenizers: train only the decoder (codes and latents stay those of init_from)
    half_export: bool = False  # store the exported model in fp16
    int8_export: bool = False  # store its large weight matrices as int8 with fp16 row scales, the rest fp16
    distributed: str = "ddp"  # with several processes: ddp, or fsdp (GPUs only)
    extra: dict = field(default_factory=dict)


def lr_factor(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``steps`` (or, with
    ``lr_schedule: time``, at ``max_minutes`` of training time ``elapsed_s``)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "time":
        progress = min(1.0, elapsed_s / (60 * cfg.max_minutes))
    else:
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases or embeddings' 1-D params)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def process_rank_world() -> tuple[int, int]:
    """(rank, number of processes) as set by torchrun / accelerate launch; (0, 1) when run directly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class LossModule(nn.Module):
    """The model's ``training_loss`` as ``forward``, so that a DDP / FSDP wrapper sees the computation."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        return self.model.training_loss(batch)


def make_accelerator(cfg: "TrainConfig", device: torch.device):
    """An ``accelerate.Accelerator`` for a run with several processes (DDP, or FSDP on GPUs)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if cfg.distributed not in ("ddp", "fsdp"):
        raise T2VError(f"train.distributed must be ddp or fsdp, got {cfg.distributed!r}")
    plugin = None
    if cfg.distributed == "fsdp":
        if device.type != "cuda":
            raise T2VError("distributed: fsdp needs GPUs; use ddp on CPUs")
        from accelerate.utils import FullyShardedDataParallelPlugin

        plugin = FullyShardedDataParallelPlugin(use_orig_params=True)
    # some parameters (e.g. the null-text embedding) get no gradient in some steps
    kwargs = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    return Accelerator(cpu=device.type == "cpu", fsdp_plugin=plugin, kwargs_handlers=kwargs)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Runs ``TrainConfig.steps`` optimiser steps of ``model`` on ``data`` (an object with ``batch(position, size)``)."""

    def __init__(self, model: nn.Module, data, cfg: TrainConfig, *, log=print, recipe: str | None = None) -> None:
        self.model, self.data, self.cfg = model, data, cfg
        self.recipe = recipe  # the command that trains this model, for the model card
        self.out_dir = Path(cfg.out_dir)
        self.device = resolve_device(cfg.device)
        self.rank, self.world = process_rank_world()
        self.log = log if self.rank == 0 else (lambda *args, **kwargs: None)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed + self.rank)  # rank 0 draws exactly what a single process draws
        random.seed(cfg.seed + self.rank)
        np.random.seed(cfg.seed + self.rank)
        self.accelerator = None
        self.loss_module = LossModule(self.model)
        if self.world > 1:
            self.accelerator = make_accelerator(cfg, self.device)
            self.device = self.accelerator.device
        self.model.to(self.device).train()
        self.bf16 = cfg.bf16 and bf16_is_fast(self.device)
        if cfg.bf16 and not self.bf16:
            self.log("bf16: this CPU has no native bfloat16 (AVX512-BF16 / AMX), where autocast is 10-30x slower "
                     "than float32; training in float32")
        if self.accelerator is not None:
            self.loss_module = self.accelerator.prepare_model(self.loss_module)  # DDP / FSDP wrapper
        self.optimizer = make_optimizer(self.model, cfg)
        self.elapsed, self.sessions = 0.0, 0  # training seconds and runs (a resume starts a new one) so far
        if cfg.lr_schedule not in ("steps", "time"):
            raise T2VError(f"train.lr_schedule must be 'steps' or 'time', not {cfg.lr_schedule!r}")
        if cfg.lr_schedule == "time" and not cfg.max_minutes:
            raise T2VError("train.lr_schedule: time decays over max_minutes: set train.max_minutes")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lambda s: lr_factor(s, cfg, self.elapsed))
        self.trainable = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self.ema = {n: p.detach().clone() for n, p in self.trainable.items()} if cfg.ema_decay else {}
        self.step, self.position = 0, 0
        self.batches = None  # with workers: an iterator of prepared batches from self.position on
        self.collapse_watch = CollapseWatch()

    # -- checkpoints -------------------------------------------------------------------------
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    def save_state(self) -> None:
        """Everything needed to continue bit-exactly, in one atomically replaced file (rank 0 writes it)."""
        if self.rank != 0:
            self.barrier()
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in self.ema.items()}
        opt = self.optimizer.state_dict()
        for idx, state in opt["state"].items():
            tensors |= {f"optim.{idx}.{k}": torch.as_tensor(v) for k, v in state.items()}
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {"step": self.step, "position": self.position, "world": self.world, "elapsed": self.elapsed,
                "sessions": self.sessions,
                "scheduler": self.scheduler.state_dict(),
                "param_groups": opt["param_groups"], "python_rng": random.getstate(),
                "numpy_rng": _numpy_state_to_json(np.random.get_state())}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_tensors(self.state_path(), tensors, {"t2v_train_state": json.dumps(meta)})
        self.barrier()

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def load_state(self) -> None:
        path = self.state_path()
        tensors = load_tensors(path)
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("t2v_train_state", "null"))
        if meta is None:
            raise T2VError(f"{path} is not a t2v training state (no metadata)")
        own = self.model.state_dict()
        self.model.load_state_dict({k: tensors[f"model.{k}"] for k in own})
        for k in self.ema:
            self.ema[k] = tensors[f"ema.{k}"].to(self.device)
        opt_state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = value
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
        self.scheduler.load_state_dict(meta["scheduler"])
        self.step = meta["step"]
        if self.rank == 0:  # the saved generators are rank 0's; other ranks start fresh ones, keyed on the step
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["rng.cuda"])
            random.setstate(_to_tuple(meta["python_rng"]))
            np.random.set_state(_numpy_state_from_json(meta["numpy_rng"]))
        else:
            torch.manual_seed(self.cfg.seed + self.rank + 7919 * self.step)
        # positions count one process's samples; a run may resume on another number of processes
        self.position = meta["position"] * meta.get("world", 1) // self.world
        self.elapsed, self.sessions = meta.get("elapsed", 0.0), meta.get("sessions", 1)

    def export(self) -> Path:
        """Write the final model (EMA weights when enabled) as a checkpoint directory ``out_dir/model``.

        Beside it, ``training.json`` lists how each stage was trained (earlier stages, such as a
        tokenizer, come from the model's ``earlier_stages``), for model cards and the results page.
        """
        directory = self.out_dir / "model"
        if self.rank != 0:
            self.barrier()
            return directory
        state = self.model.state_dict()
        state |= {k: v for k, v in self.ema.items()}
        directory = save_model(self.out_dir / "model", self.model, state_dict=state, weights=self.export_weights,
                               card=self.model_card(), captions=getattr(self.data, "caption_vocabulary", None))
        stages = [*getattr(self.model, "earlier_stages", []), self.stage_record()]
        (directory / TRAINING_FILE).write_text(json.dumps({"stages": stages}, indent=2) + "\n")
        self.barrier()
        return directory

    def stage_record(self) -> dict:
        cfg = self.cfg
        record = {"family": self.model.family, "command": self.recipe, "steps": self.step,
                  "global_batch": self.global_batch, "processes": self.world, "wall_minutes": round(self.elapsed / 60, 1),
                  "runs": self.sessions, "hardware": describe_hardware(self.device, cfg.threads)}
        return record | ({"init_from": cfg.init_from} if cfg.init_from else {}) | (
            {"init_partial": True} if cfg.init_partial else {})

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.world * self.cfg.grad_accum

    @property
    def export_weights(self) -> str:
        """How the exported model stores its weights (a checkpoint.WEIGHT_PRECISIONS name)."""
        return "int8" if self.cfg.int8_export else "float16" if self.cfg.half_export else "float32"

    def model_card(self) -> str:
        cfg = self.cfg
        lines = [f"# {self.model.family} (trained with t2v)", ""]
        if self.recipe:
            lines.append(f"- command: `{self.recipe}`")
        lines += [f"- parameters: {count_parameters(self.model) / 1e6:.2f}M trainable",
                  f"- steps: {self.step} of {cfg.steps}, global batch {self.global_batch}, lr {cfg.lr}",
                  f"- hardware: {describe_hardware(self.device, cfg.threads)}",
                  f"- training wall time: {self.elapsed / 60:.1f} min in {self.sessions} run(s)",
                  f"- torch {torch.__version__}, exported {self.export_weights}"]
        return "\n".join(lines) + "\n"

    # -- the loop ----------------------------------------------------------------------------
    def train_step(self) -> dict:
        cfg = self.cfg
        logs: dict = {}
        for micro in range(cfg.grad_accum):
            batch = self.next_batch()
            last = micro == cfg.grad_accum - 1
            with nullcontext() if last or self.world == 1 else self.loss_module.no_sync():  # sync once per step
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    loss, logs = self.loss_module(batch)
                (loss / cfg.grad_accum).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable.values(), cfg.grad_clip or float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema:
            with torch.no_grad():
                for name, p in self.trainable.items():
                    self.ema[name].lerp_(p.detach(), 1 - cfg.ema_decay)
        self.step += 1
        return {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": self.scheduler.get_last_lr()[0], **logs}

    def next_batch(self) -> dict:
        """This process's next batch; a batch whose every video failed to decode is passed over."""
        for _ in range(100):
            if self.cfg.workers:
                if self.batches is None:
                    self.batches = prepared_batches(self.data, self.position, self.cfg.batch_size, self.cfg.workers,
                                                    pin=self.device.type == "cuda")
                batch = next(self.batches)
                getattr(self.data, "count_skipped", lambda b: None)(batch)  # the worker's counts stay there
            else:
                batch = self.data.batch(self.position, self.cfg.batch_size)
            self.position += self.cfg.batch_size
            if batch["caption"]:
                return batch
        raise T2VError(f"100 batches in a row had no readable video (data position {self.position})")

    def run(self, *, resume: bool = False) -> Path:
        """Train to ``cfg.steps`` (continuing from the saved state when ``resume``) and export the model."""
        cfg = self.cfg
        if resume:
            if not self.state_path().is_file():
                raise T2VError(f"--resume: no training state at {self.state_path()}")
            self.load_state()
            self.log(f"resumed at step {self.step} (data position {self.position})")
        self.log(f"training {self.model.family}: {count_parameters(self.model) / 1e6:.2f}M trainable parameters, "
                 f"global batch {self.global_batch} = {cfg.batch_size} per process x {self.world} process(es) x "
                 f"{cfg.grad_accum} accumulation, device {self.device}")
        start = time.time()
        elapsed_before = self.elapsed
        self.sessions += 1
        history = self.out_dir / "log.jsonl"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.model.family, dynamic_ncols=True,
                   disable=self.rank != 0)
        while self.step < cfg.steps:
            logs = self.train_step()
            self.elapsed = elapsed_before + time.time() - start
            bar.update(1)
            self.warn_on_collapse(logs)
            if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "psnr", "ce", "lr")})
                with history.open("a") as f:
                    f.write(json.dumps({"step": self.step, "time": round(time.time() - start, 2), **logs}) + "\n")
            if self.rank == 0 and cfg.sample_every and self.step % cfg.sample_every == 0:
                self.write_samples()
            minutes = (self.elapsed if cfg.lr_schedule == "time" else time.time() - start) / 60
            out_of_time = self.rank_zero_says(bool(cfg.max_minutes) and minutes >= cfg.max_minutes)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                self.save_state()
                self.log(f"checkpoint at step {self.step}")
            if out_of_time:
                self.log(f"stopping at step {self.step}: max_minutes={cfg.max_minutes} reached; continue with --resume")
                break
        bar.close()
        report = getattr(self.data, "report", lambda: "")()
        if report:
            self.log(report)
        directory = self.export()
        self.leave_process_group()
        return directory

    def leave_process_group(self) -> None:
        """End a multi-process run cleanly: a process group left to interpreter exit can abort a rank
        ("terminate called without an active exception") after the model is written."""
        import torch.distributed as dist

        if self.world > 1 and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    def warn_on_collapse(self, logs: dict) -> None:
        warning = self.collapse_watch.check(self.step, logs)
        if warning:
            hint = ("; bf16 autocast on a CPU without AMX has done this to a video VAE: try train.bf16: false"
                    if self.bf16 and self.device.type == "cpu" else "")
            self.log(warning + hint)

    def rank_zero_says(self, flag: bool) -> bool:
        """Rank 0's value of ``flag`` on every process (clocks differ; all must stop together)."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def write_samples(self) -> None:
        """A contact sheet of the model's preview on a fixed batch, as out_dir/samples/step_N.png."""
        preview = getattr(self.model, "preview", None)
        if preview is None:
            return
        from t2v.video import contact_sheet

        rng_state = torch.get_rng_state()  # previews must not change the training run
        self.model.eval()
        frames = preview(self.data.batch(0, 4))  # uint8 (B, T, H, W, 3)
        self.model.train()
        torch.set_rng_state(rng_state)
        (self.out_dir / "samples").mkdir(parents=True, exist_ok=True)
        b, t = frames.shape[:2]
        sheet = contact_sheet(frames.reshape(b * t, *frames.shape[2:]).numpy(), columns=t)  # one row per video
        sheet.save(self.out_dir / "samples" / f"step_{self.step:06d}.png")


class _BatchesFrom(torch.utils.data.Dataset):
    """Item ``i``: the batch at data position ``start + i * size`` (so workers may build them in any order)."""

    def __init__(self, data, start: int, size: int, count: int = 1 << 40) -> None:
        self.data, self.start, self.size, self.count = data, start, size, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        return self.data.batch(self.start + i * self.size, self.size)


def prepared_batches(data, start: int, size: int, workers: int, *, pin: bool = False):
    """The batches ``data.batch(start, size)``, ``data.batch(start + size, size)``, ... in order, built
    ahead by ``workers`` processes: the same batches as without workers, so a run resumes exactly (and where
    workers cannot run, ``worker_loader`` builds them in this process)."""
    loader = worker_loader(_BatchesFrom(data, start, size), workers, prefetch_factor=4, persistent=True,
                           batch_size=None, pin_memory=pin,
                           generator=torch.Generator())  # its seeds must not draw on the training RNG
    return iter(loader)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _to_tuple(x):
    return tuple(_to_tuple(i) for i in x) if isinstance(x, list) else x


def _numpy_state_to_json(state) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_json(data: list):
    name, keys, pos, has_gauss, cached = data
    return name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached
