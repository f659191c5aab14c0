import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from t2v.train.trainer import TrainConfig, lr_factor

TINY_RUN = textwrap.dedent("""
    family: videogpt-vqvae
    model: {preset: tiny, temporal_downsample: 2, spatial_downsample: 4, num_frames: 8, height: 32, width: 32}
    data: {num_frames: 8, height: 32, width: 32, level2_prob: 0.5}
    train: {steps: 6, batch_size: 2, lr: 1.0e-3, warmup_steps: 2, checkpoint_every: 2, threads: 1,
            ema_decay: 0.9, log_every: 1, out_dir: OUT}
""")


def write_config(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY_RUN.replace("OUT", str(tmp_path / name)))
    return path


def t2v_train(config, *extra, **popen):
    cmd = [sys.executable, "-u", "-m", "t2v.cli", "train", "videogpt-vqvae", "--config", str(config), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    assert lr_factor(50, cfg) < lr_factor(20, cfg)


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    straight = t2v_train(write_config(tmp_path, "straight"))
    out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out

    killed_config = write_config(tmp_path, "killed")
    victim = t2v_train(killed_config)
    for line in victim.stdout:
        if "checkpoint at step 4" in line:
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model").exists()  # it never got to export

    resumed = t2v_train(killed_config, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resumed at step 4" in out

    a = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_without_state_is_a_one_line_error(tmp_path):
    proc = t2v_train(write_config(tmp_path, "fresh"), "--resume")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert out.strip().startswith("error: --resume: no training state")


def test_training_lowers_the_reconstruction_loss(tiny_vqvae_config):
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.models.videogpt import VQVAE
    from t2v.train.trainer import Trainer

    torch.manual_seed(0)
    model = VQVAE(tiny_vqvae_config)
    data = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32))
    trainer = Trainer(model, data, TrainConfig(steps=40, batch_size=4, lr=2e-3, warmup_steps=5, out_dir="unused"),
                      log=lambda *_: None)
    losses = [trainer.train_step()["loss"] for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_sample_grid_and_model_card_are_written(tmp_path, tiny_vqvae_config):
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.models.videogpt import VQVAE
    from t2v.train.trainer import Trainer

    data = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32))
    cfg = TrainConfig(steps=2, batch_size=2, sample_every=2, out_dir=str(tmp_path / "run"))
    model_dir = Trainer(VQVAE(tiny_vqvae_config), data, cfg, log=lambda *_: None, recipe="t2v train x --config y").run()
    assert (tmp_path / "run" / "samples" / "step_000002.png").stat().st_size > 0
    card = (model_dir / "README.md").read_text()
    assert "`t2v train x --config y`" in card and "training wall time" in card and "steps: 2 of 2" in card
    (stage,) = json.loads((model_dir / "training.json").read_text())["stages"]
    assert stage["command"] == "t2v train x --config y" and stage["steps"] == 2 and stage["runs"] == 1


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocasts_only_where_the_cpu_has_bfloat16(monkeypatch, tiny_vqvae_config, native):
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.models.videogpt import VQVAE
    from t2v.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "bf16_is_fast", lambda device: native)
    logs = []
    data = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32))
    trainer = trainer_module.Trainer(VQVAE(tiny_vqvae_config), data,
                                     TrainConfig(steps=1, batch_size=2, bf16=True, out_dir="unused"), log=logs.append)
    assert trainer.bf16 is native
    assert any("training in float32" in line for line in logs) is not native
    assert torch.isfinite(torch.tensor(trainer.train_step()["loss"]))


def test_init_from_starts_at_the_trained_weights_and_keeps_their_history(tmp_path):
    from t2v.train import train_from_config

    first = train_from_config("videogpt-vqvae", write_config(tmp_path, "first"), log=lambda *_: None)
    trained = load_file(first / "model.safetensors")
    config = write_config(tmp_path, "tuned")
    tuned = train_from_config("videogpt-vqvae", config, overrides={"steps": 1, "lr": 1e-9, "warmup_steps": 1,
                                                                   "ema_decay": 0.0, "init_from": str(first)},
                              log=lambda *_: None)
    weights = load_file(tuned / "model.safetensors")
    learned = [k for k in trained if not k.startswith("quantizer.")]  # the EMA codebook updates without lr
    changed = max((weights[k].float() - trained[k].float()).abs().max().item() for k in learned)
    assert changed < 1e-3  # one step at lr 1e-9 from the trained weights, not from a fresh init
    stages = json.loads((tuned / "training.json").read_text())["stages"]
    assert [s["steps"] for s in stages] == [6, 1] and stages[-1]["init_from"] == str(first)


def test_init_from_another_architecture_is_a_one_line_error(tmp_path):
    from t2v.errors import T2VError
    from t2v.train import train_from_config

    first = train_from_config("videogpt-vqvae", write_config(tmp_path, "first"), log=lambda *_: None)
    config = tmp_path / "wider.yaml"
    config.write_text(write_config(tmp_path, "wider").read_text().replace("preset: tiny,", "preset: tiny, codebook_size: 32,"))
    with pytest.raises(T2VError, match="init_from .*architecture differs"):
        train_from_config("videogpt-vqvae", config, overrides={"init_from": str(first)}, log=lambda *_: None)
