import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_time_schedule_decays_over_max_minutes_of_training():
    cfg = TrainConfig(steps=10**6, warmup_steps=10, min_lr_ratio=0.1, lr_schedule="time", max_minutes=2)
    assert lr_factor(0, cfg, 0.0) == pytest.approx(0.1)  # warm-up still counts steps
    assert lr_factor(500, cfg, 0.0) == pytest.approx(1.0)
    assert lr_factor(500, cfg, 60.0) == pytest.approx(0.55)  # half the budget: half way down the cosine
    assert lr_factor(500, cfg, 120.0) == pytest.approx(0.1)
    assert lr_factor(500, cfg, 600.0) == pytest.approx(0.1)


def test_time_schedule_without_a_budget_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY_RUN.replace("OUT", str(tmp_path / "bad")).replace("log_every: 1,", "log_every: 1, lr_schedule: time,"))
    proc = t2v_train(path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert out.strip().splitlines()[-1].startswith("error: train.lr_schedule: time decays over max_minutes")


def test_workers_prepare_exactly_the_batches_of_one_process():
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.train.trainer import prepared_batches

    data = ShapesStream(ShapesDataConfig(num_frames=4, height=16, width=16, buckets=[[4, 16, 16], [2, 16, 32]]))
    batches = prepared_batches(data, 6, 3, workers=2)
    for position in range(6, 6 + 5 * 3, 3):
        got, want = next(batches), data.batch(position, 3)
        assert got["caption"] == want["caption"]
        assert torch.equal(got["video"], want["video"])


def test_training_with_workers_equals_training_without(tmp_path):
    plain = t2v_train(write_config(tmp_path, "plain"))
    path = tmp_path / "workers.yaml"
    path.write_text(TINY_RUN.replace("OUT", str(tmp_path / "workers")).replace("threads: 1,", "threads: 1, workers: 2,"))
    with_workers = t2v_train(path)
    for proc in (plain, with_workers):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    a = load_file(tmp_path / "plain" / "model" / "model.safetensors")
    b = load_file(tmp_path / "workers" / "model" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key


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
    assert json.loads((model_dir / "config.json").read_text())["captions"] == "moving-shapes"  # what it rewrites into


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


def test_collapse_watch_warns_once_when_the_kl_stays_1000x_below_its_peak():
    from t2v.train.collapse import CollapseWatch

    watch = CollapseWatch(patience=5, skip=2)
    kl = [0.0, 5.0, 200.0, 900.0, 1000.0] + [0.0] * 10  # the encoder stops carrying information
    warnings = [watch.check(step, {"kl": value, "grad_norm": 1.0}) for step, value in enumerate(kl, 1)]
    said = [w for w in warnings if w]
    assert len(said) == 1 and said[0].startswith("warning: kl has stayed over 1000x below its peak")
    assert warnings.index(said[0]) == 9  # the fifth low step in a row


def test_collapse_watch_keeps_quiet_on_a_healthy_decay_a_start_spike_and_a_dip():
    from t2v.train.collapse import CollapseWatch

    watch = CollapseWatch(patience=5, skip=3)
    grad_norms = [5e3, 900.0, 40.0] + [1.0 / (1 + s / 10) for s in range(300)]  # spike, then a 30x drift down
    grad_norms[100:103] = [1e-6] * 3  # a dip shorter than the patience
    assert not any(watch.check(step, {"grad_norm": g, "loss": float("nan")}) for step, g in enumerate(grad_norms, 1))


def test_the_trainer_logs_a_collapse_warning(tmp_path, tiny_vqvae_config):
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.models.videogpt import VQVAE
    from t2v.train.collapse import CollapseWatch
    from t2v.train.trainer import Trainer

    logs = []
    data = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32))
    trainer = Trainer(VQVAE(tiny_vqvae_config), data, TrainConfig(steps=3, batch_size=2, out_dir=str(tmp_path)),
                      log=logs.append)
    trainer.collapse_watch = CollapseWatch(factor=1e-9, patience=1, skip=0)  # any step counts as collapsed
    trainer.run()
    assert sum(line.startswith("warning: grad_norm has stayed") for line in logs) == 1


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


TOKENIZER_RUNS = {  # family: model section, frames (tiny, 32x32)
    "videogpt-vqvae": ("{preset: tiny, temporal_downsample: 2, spatial_downsample: 4, num_frames: 8, height: 32, width: 32}", 8),
    "phenaki-cvivit": ("{preset: tiny, patch_size: 8, temporal_patch: 4, num_frames: 9, height: 32, width: 32}", 9),
    "video-vae": ("{preset: tiny, temporal_downsample: 2, spatial_downsample: 4, num_frames: 8, height: 32, width: 32}", 8),
}


def tokenizer_config(tmp_path, family, name, train="", model_extra=""):
    model, frames = TOKENIZER_RUNS[family]
    model = model[:-1] + model_extra + "}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""
        family: {family}
        model: {model}
        data: {{num_frames: {frames}, height: 32, width: 32, level2_prob: 0.5}}
        train: {{steps: 3, batch_size: 2, lr: 1.0e-2, warmup_steps: 1, checkpoint_every: 100, threads: 1,
                 log_every: 1, out_dir: {tmp_path / name} {train}}}
    """))
    return path


def prior_config(tmp_path, name, tokenizer, train=""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""
        family: videogpt
        model: {{preset: tiny, tokenizer: {tokenizer}, text: {{name: small, dim: 32, layers: 1, heads: 2, vocab_size: 256}}}}
        data: {{num_frames: 8, height: 32, width: 32}}
        train: {{steps: 2, batch_size: 2, lr: 1.0e-3, warmup_steps: 1, checkpoint_every: 100, threads: 1,
                 out_dir: {tmp_path / name} {train}}}
    """))
    return path


@pytest.mark.parametrize("family", list(TOKENIZER_RUNS))
def test_decoder_only_fine_tuning_keeps_every_code_and_moves_the_decoder(tmp_path, family):
    from t2v.checkpoint import load_model
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.nn.pixels import frames_to_tensor
    from t2v.train import train_from_config

    first = train_from_config(family, tokenizer_config(tmp_path, family, "first"), log=lambda *_: None)
    tuned = train_from_config(family, tokenizer_config(tmp_path, family, "tuned", f", init_from: {first}, decoder_only: true"),
                              log=lambda *_: None)
    before, after = load_model(first), load_model(tuned)
    old, new = before.state_dict(), after.state_dict()
    encoding = [k for k in old if k.split(".")[0] in before.encoding_parts]
    decoding = [k for k in old if k.startswith("decoder.") and old[k].is_floating_point()]
    assert encoding and all(torch.equal(old[k], new[k]) for k in encoding)  # codebook buffers too
    assert any(not torch.equal(old[k], new[k]) for k in decoding)
    video = frames_to_tensor(ShapesStream(ShapesDataConfig(num_frames=TOKENIZER_RUNS[family][1], height=32, width=32)).batch(5, 3)["video"])
    with torch.no_grad():
        assert torch.equal(before.encode(video), after.encode(video))
    stages = json.loads((tuned / "training.json").read_text())["stages"]
    assert [s["steps"] for s in stages] == [3, 3] and stages[-1]["init_from"] == str(first)


def test_a_decoder_grown_by_init_partial_keeps_every_code_and_trains_only_its_new_and_decoding_parts(tmp_path):
    """Stage 1e of Phenaki: a C-ViViT given a pixel refiner, started from one without (init_partial), decoder
    only: the codebook buffers come across with the parameters, so every video keeps its codes."""
    from t2v.checkpoint import load_model
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.nn.pixels import frames_to_tensor
    from t2v.train import train_from_config

    first = train_from_config("phenaki-cvivit", tokenizer_config(tmp_path, "phenaki-cvivit", "first"), log=lambda *_: None)
    grown = train_from_config("phenaki-cvivit", tokenizer_config(
        tmp_path, "phenaki-cvivit", "grown", f", init_from: {first}, init_partial: true, decoder_only: true",
        model_extra=", refine_channels: 8"), log=lambda *_: None)
    before, after = load_model(first), load_model(grown)
    old, new = before.state_dict(), after.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if k.split(".")[0] in before.encoding_parts)
    assert new["refine.net.4.weight"].abs().sum() > 0  # zero at init, trained since
    video = frames_to_tensor(ShapesStream(ShapesDataConfig(num_frames=9, height=32, width=32)).batch(5, 3)["video"])
    with torch.no_grad():
        assert torch.equal(before.encode(video), after.encode(video))


def test_a_prior_continued_on_a_fine_tuned_decoder_keeps_that_tokenizer_and_every_stage(tmp_path):
    """Stage 1b (decoder only, from the stage-2 model) then stage 2b: the new model pairs the prior it
    started from with the fine-tuned decoder, and its card lists all four stages in order."""
    from t2v.checkpoint import load_model
    from t2v.errors import T2VError
    from t2v.train import train_from_config

    tokenizer = train_from_config("videogpt-vqvae", tokenizer_config(tmp_path, "videogpt-vqvae", "stage1"), log=lambda *_: None)
    prior = train_from_config("videogpt", prior_config(tmp_path, "stage2", tokenizer), log=lambda *_: None)
    decoder = train_from_config("videogpt-vqvae", tokenizer_config(
        tmp_path, "videogpt-vqvae", "stage1b", f", init_from: {prior}, decoder_only: true"), log=lambda *_: None)
    continued = train_from_config("videogpt", prior_config(tmp_path, "stage2b", decoder, f", init_from: {prior}, lr: 1.0e-9"),
                                  log=lambda *_: None)
    new, tuned, old = load_model(continued), load_model(decoder), load_model(prior)
    assert all(torch.equal(v, tuned.state_dict()[k]) for k, v in new.tokenizer.state_dict().items())
    assert not torch.equal(new.tokenizer.decoder[0].weight, old.tokenizer.decoder[0].weight)
    head = new.state_dict()["head.weight"]
    assert (head - old.state_dict()["head.weight"]).abs().max() < 1e-3  # the prior it started from
    stages = json.loads((continued / "training.json").read_text())["stages"]
    assert [(s["family"], s.get("init_from")) for s in stages] == [
        ("videogpt-vqvae", None), ("videogpt-vqvae", str(prior)), ("videogpt", None), ("videogpt", str(prior))]
    with pytest.raises(T2VError, match="holds neither a phenaki-cvivit model nor one built on it"):
        train_from_config("phenaki-cvivit", tokenizer_config(tmp_path, "phenaki-cvivit", "foreign", f", init_from: {prior}"),
                          log=lambda *_: None)


def test_a_prior_moved_onto_a_new_tokenizer_keeps_the_old_tokenizers_stages_when_continued(tmp_path):
    """Stages 1 and 2, then 1c (a tokenizer trained apart from stage 1), 2h (the prior moved onto it by
    init_partial) and 2i (continued from 2h): the prior learned on stage 1's codes first, so every card after
    the move lists stage 1 too, once, before stage 1c."""
    from t2v.train import train_from_config

    def train(family, config):
        return train_from_config(family, config, log=lambda *_: None)

    old = train("videogpt-vqvae", tokenizer_config(tmp_path, "videogpt-vqvae", "stage1"))
    prior = train("videogpt", prior_config(tmp_path, "stage2", old))
    new = train("videogpt-vqvae", tokenizer_config(tmp_path, "videogpt-vqvae", "stage1c"))
    moved = train("videogpt", prior_config(tmp_path, "stage2h", new, f", init_from: {prior}, init_partial: true"))
    continued = train("videogpt", prior_config(tmp_path, "stage2i", new, f", init_from: {moved}"))
    for directory, names in [(moved, ["stage1", "stage1c", "stage2", "stage2h"]),
                             (continued, ["stage1", "stage1c", "stage2", "stage2h", "stage2i"])]:
        stages = json.loads((directory / "training.json").read_text())["stages"]
        assert [Path(s["command"].split("--config ")[1]).stem for s in stages] == names


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_names_only_known_keys(path):
    """A typo in a recipe fails here, not half an hour into a training run."""
    from t2v.config import from_dict, load_yaml
    from t2v.data.stream import ShapesDataConfig
    from t2v.models import model_class

    spec = load_yaml(path)
    assert set(spec) <= {"family", "model", "data", "train"}
    cls = model_class(spec["family"])
    model = dict(spec.get("model") or {})
    preset = model.pop("preset", None)
    assert preset is None or preset in cls.presets
    from_dict(cls.config_class, {**cls.presets.get(preset, {}), **model}, where=path.name)
    from_dict(ShapesDataConfig, spec.get("data"), where=path.name)
    train = from_dict(TrainConfig, spec.get("train"), where=path.name)
    assert (train.steps > 0 or train.init_from) and train.out_dir.startswith("runs/")  # 0 steps: assembles init_from
