"""Data-parallel training through accelerate / torch.distributed: two CPU processes (gloo) train to
the same weights as one process with the same global batch, and a run resumes on another number
of processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from t2v.checkpoint import load_tensors

# the fvd-shapes classifier: its loss has no randomness, so equal data means equal gradients
CONFIG = {
    "family": "fvd-shapes",
    "model": {"channels": [8, 16], "strides": [[1, 2, 2], [2, 2, 2]], "num_frames": 8, "height": 32, "width": 32},
    "data": {"split": "all", "level2_prob": 0.0, "labels": True, "num_frames": 8, "height": 32, "width": 32},
    "train": {"steps": 20, "lr": 3e-3, "warmup_steps": 2, "min_lr_ratio": 1.0, "threads": 1, "log_every": 5,
              "checkpoint_every": 10},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(tmp_path: Path, name: str, *, processes: int, batch_size: int, steps: int = 20, resume: bool = False) -> Path:
    spec = {**CONFIG, "train": {**CONFIG["train"], "batch_size": batch_size, "steps": steps,
                                "out_dir": str(tmp_path / name)}}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec))
    command = ["-m", "t2v.cli", "train", "fvd-shapes", "--config", str(config)] + (["--resume"] if resume else [])
    if processes > 1:
        command = ["-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
                   f"--master_port={free_port()}", *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return tmp_path / name


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run / "model" / "model.safetensors")


def assert_same_model(a: Path, b: Path) -> None:
    """Equal weights (to float tolerance) and equal outputs on a fixed batch.

    A conv bias that a per-channel GroupNorm follows has a zero gradient up to rounding; Adam
    scales that rounding noise up to full steps, so those biases wander apart while the model
    (its outputs) stays the same. They are compared through the outputs only.
    """
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        if not (key.startswith("stages.") and key.endswith(".0.bias")):
            torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-5, msg=key)
    from t2v.checkpoint import load_model
    from t2v.data.stream import ShapesDataConfig, ShapesStream

    frames = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, seed=9)).batch(0, 4)["video"]
    ma, mb = load_model(a / "model").eval(), load_model(b / "model").eval()
    with torch.no_grad():
        torch.testing.assert_close(ma.pooled(ma.prepare(frames)), mb.pooled(mb.prepare(frames)), rtol=1e-4, atol=1e-4)


@pytest.mark.timeout(900)
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    two = train(tmp_path, "two", processes=2, batch_size=4)
    one = train(tmp_path, "one", processes=1, batch_size=8)
    assert_same_model(two, one)
    log = (two / "log.jsonl").read_text().splitlines()
    assert len(log) == 4  # one history (every 5 of 20 steps), written by rank 0 alone
    record = yaml.safe_load((two / "model" / "training.json").read_text())["stages"][-1]
    assert record["global_batch"] == 8 and record["processes"] == 2


@pytest.mark.timeout(900)
def test_a_run_resumes_on_another_number_of_processes(tmp_path):
    # a constant learning rate after warm-up, so that stopping at 10 of 20 steps changes nothing
    run = train(tmp_path, "run", processes=2, batch_size=4, steps=10)
    resumed = train(tmp_path, "run", processes=1, batch_size=8, steps=20, resume=True)
    straight = train(tmp_path, "straight", processes=1, batch_size=8, steps=20)
    assert run == resumed
    assert_same_model(resumed, straight)  # the same data in the same order: only the reduction order differs
