"""Data throughput from webdataset shards: decoded clips per second with 0, 1 and 2 DataLoader
workers, and the share of a short training run's time that the step waits for data.

    python benchmarks/data.py                  # -> benchmarks/results/data.json and data.png

Writes ``--videos`` Moving Shapes mp4s, turns them into shards with ``t2v data shards``'s code,
then reads them back. The training run is the VideoGPT prior's default config (stage 2), with
its tokenizer freshly initialised (its speed, not its weights, matters here).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from t2v.data.files import write_shapes_dataset
from t2v.data.shards import ShardDataConfig, ShardStream, write_shards

RESULTS = Path(__file__).resolve().parent / "results"


def clips_per_second(shards: Path, workers: int, batch_size: int, batches: int) -> float:
    stream = ShardStream(ShardDataConfig(shards=str(shards), workers=workers))
    stream.batch(0, batch_size)  # start-up (worker processes) is not throughput
    start = time.perf_counter()
    for i in range(1, batches + 1):
        stream.batch(i * batch_size, batch_size)
    return batches * batch_size / (time.perf_counter() - start)


class TimedData:
    """``data`` (a ShardStream), adding up the seconds spent inside ``batch``."""

    def __init__(self, data: ShardStream) -> None:
        self.data, self.waited = data, 0.0

    def __getattr__(self, name: str):
        return getattr(self.data, name)

    def batch(self, position: int, size: int) -> dict:
        start = time.perf_counter()
        result = self.data.batch(position, size)
        self.waited += time.perf_counter() - start
        return result


def data_wait_share(shards: Path, workers: int, steps: int) -> dict:
    """Train the small VideoGPT prior for ``steps`` steps on shards; time spent inside data.batch."""
    from t2v.checkpoint import save_model
    from t2v.models.videogpt import VQVAE, VQVAEConfig
    from t2v.train import Trainer, TrainConfig, build_model

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = save_model(Path(tmp) / "vqvae", VQVAE(VQVAEConfig(channels=[32, 64, 128])))
        model = build_model("videogpt", {"preset": "S", "tokenizer": str(tokenizer), "layers": 4,
                                         "text": {"name": "minilm", "max_length": 32}})
        data = TimedData(ShardStream(ShardDataConfig(shards=str(shards), workers=workers)))
        cfg = TrainConfig(steps=steps, batch_size=16, threads=torch.get_num_threads(), bf16=True, log_every=10**9,
                          checkpoint_every=10**9, out_dir=str(Path(tmp) / "run"))
        trainer = Trainer(model, data, cfg, log=lambda *a: None)
        trainer.train_step()  # warm-up, not counted
        data.waited = 0.0
        start = time.perf_counter()
        for _ in range(steps - 1):
            trainer.train_step()
        total = time.perf_counter() - start
    return {"workers": workers, "steps": steps - 1, "seconds": total, "data_seconds": data.waited,
            "wait_share": data.waited / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_shapes_dataset(Path(tmp) / "videos", args.videos)
        shards = Path(tmp) / "shards"
        write_shards(csv, shards, shard_size=64)
        throughput = {w: clips_per_second(shards, w, 16, args.batches) for w in (0, 1, 2)}
        for w, value in throughput.items():
            print(f"{w} workers: {value:.1f} decoded clips/s (16x64x64, batches of 16)")
        waits = [data_wait_share(shards, w, args.train_steps) for w in (0, 2)]
        for r in waits:
            print(f"training with {r['workers']} workers: waits for data {r['wait_share']:.1%} of the step time")
    result = {"clips_per_second": {str(k): v for k, v in throughput.items()}, "training": waits,
              "threads": args.threads, "videos": args.videos, "clip": "16x64x64 H.264 mp4 in shards of 64"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "data.png")
    print(f"wrote {RESULTS / 'data.json'} and data.png")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.2))
    workers = list(result["clips_per_second"])
    left.bar(workers, list(result["clips_per_second"].values()), color="tab:blue")
    left.set_xlabel("DataLoader workers")
    left.set_title("decoded clips / s")
    right.bar([str(r["workers"]) for r in result["training"]], [100 * r["wait_share"] for r in result["training"]],
              color="tab:orange")
    right.axhline(10, color="gray", linestyle="--", linewidth=1)
    right.set_xlabel("DataLoader workers")
    right.set_title("training step waiting for data (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
