"""Training: the shared loop (``Trainer``) and ``train_from_config`` behind ``t2v train``."""

from __future__ import annotations

from pathlib import Path

from t2v.config import from_dict, load_yaml
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.errors import T2VError
from t2v.models import model_class
from t2v.train.trainer import TrainConfig, Trainer, process_rank_world

__all__ = ["TrainConfig", "Trainer", "build_data", "build_model", "start_from_trained", "train_from_config"]


def build_model(family: str, section: dict | None):
    """A fresh model for training from the YAML ``model`` section (``preset`` plus overrides)."""
    cls = model_class(family)
    section = dict(section or {})
    preset = section.pop("preset", None)
    presets = getattr(cls, "presets", {})
    if preset is not None and preset not in presets:
        raise T2VError(f"unknown preset {preset!r} for {family}; known: {', '.join(presets)}")
    config = from_dict(cls.config_class, {**presets.get(preset, {}), **section}, where=f"{family} model config")
    return cls.for_training(config) if hasattr(cls, "for_training") else cls(config)


def start_from_trained(model, directory: str) -> None:
    """Fine-tuning: copy the weights of the trained model in ``directory`` (same family and
    architecture) into ``model``; its training history becomes the earlier stages of the new card."""
    from t2v.checkpoint import load_model, read_training_stages

    trained = load_model(directory, family=model.family)
    try:
        model.load_state_dict(trained.state_dict())
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise T2VError(f"init_from {directory}: its architecture differs from the configured model ({first})") from None
    model.earlier_stages = read_training_stages(directory)


def build_data(section: dict | None, *, where: str = "data"):
    """The training data a config's ``data`` section names, for this process: webdataset shards when it
    has ``shards: DIR``, else the generated Moving Shapes stream."""
    rank, world = process_rank_world()
    section = dict(section or {})
    if "shards" in section:
        from t2v.data.shards import ShardDataConfig, ShardStream

        return ShardStream(from_dict(ShardDataConfig, section, where=where), rank=rank, world=world)
    return ShapesStream(from_dict(ShapesDataConfig, section, where=where), rank=rank, world=world)


def train_from_config(family: str, config_path: str | Path, *, resume: bool = False, overrides: dict | None = None,
                      log=print) -> Path:
    """Run ``t2v train FAMILY --config FILE``: returns the exported model directory."""
    spec = load_yaml(config_path)
    if spec.get("family", family) != family:
        raise T2VError(f"{config_path} configures {spec['family']!r}, not {family!r}")
    unknown = set(spec) - {"family", "model", "data", "train"}
    if unknown:
        raise T2VError(f"unknown section {sorted(unknown)[0]!r} in {config_path}; allowed: family, model, data, train")
    train_cfg = from_dict(TrainConfig, {**spec.get("train", {}), **(overrides or {})}, where=f"{config_path} train")
    import torch

    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)  # the same config always starts from the same weights
    model = build_model(family, spec.get("model"))
    if train_cfg.init_from:
        start_from_trained(model, train_cfg.init_from)
    data = build_data(spec.get("data"), where=f"{config_path} data")
    recipe = f"t2v train {family} --config {config_path}"
    return Trainer(model, data, train_cfg, log=log, recipe=recipe).run(resume=resume)
