"""Training: the shared loop (``Trainer``) and ``train_from_config`` behind ``t2v train``."""

from __future__ import annotations

from pathlib import Path

from t2v.config import from_dict, load_yaml
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.errors import T2VError
from t2v.models import model_class
from t2v.models.stages import VideoAutoencoder
from t2v.train.trainer import TrainConfig, Trainer, process_rank_world

__all__ = ["TrainConfig", "Trainer", "build_data", "build_model", "freeze_encoding", "start_from_trained", "train_from_config",
           "transferable_weights"]


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


def start_from_trained(model, directory: str, *, partial: bool = False, log=print) -> None:
    """Fine-tuning: copy the weights of the trained model in ``directory`` into ``model`` (same family
    and architecture); its training history becomes the earlier stages of the new card.

    A tokenizer may start from a stage-2 model of a family built on it (a bundle, say): it takes that
    model's tokenizer. A stage-2 model keeps the tokenizer its config names (``model.tokenizer``)
    and takes the rest, so a prior can go on training on a tokenizer whose decoder was fine-tuned.

    ``partial``: the trained model is of the same family but on another tokenizer; only its parameters
    whose names and shapes match are copied (``transferable_weights``)."""
    from t2v.checkpoint import load_model, read_config, read_training_stages

    family = read_config(directory)["family"]
    if family != model.family and isinstance(model, VideoAutoencoder):
        built_on = model_class(family)
        if getattr(built_on, "tokenizer_class", None) is not type(model):
            raise T2VError(f"init_from {directory}: holds neither a {model.family} model nor one built on it")
        trained, stages = built_on.trained_tokenizer(directory)
    else:
        trained, stages = load_model(directory, family=model.family), read_training_stages(directory)
    state = transferable_weights(model, trained, log=log) if partial else trained.state_dict()
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:  # keep the configured tokenizer and the history of its stages
        state |= {f"tokenizer.{k}": v for k, v in tokenizer.state_dict().items()}
        stages = merged_history(getattr(model, "earlier_stages", []), stages, stage1=tokenizer.family)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise T2VError(f"init_from {directory}: its architecture differs from the configured model ({first})") from None
    model.earlier_stages = stages


def merged_history(tokenizer_stages: list[dict], trained_stages: list[dict], *, stage1: str) -> list[dict]:
    """The stages behind a prior that starts from a trained one (``trained_stages``) on the configured tokenizer
    (``tokenizer_stages``): every tokenizer stage of either, in order and once each, then the prior's stages.
    The trained prior's own tokenizer stages stay even when the configured tokenizer was trained apart from
    them: the prior learned on their latents before it moved."""
    earlier = [s for s in trained_stages if s.get("family") == stage1]
    tokenizer = [*earlier, *(s for s in tokenizer_stages if s not in earlier)]
    return [*tokenizer, *(s for s in trained_stages if s.get("family") != stage1)]


def transferable_weights(model, trained, *, log=print) -> dict:
    """The state of ``model`` with every parameter outside its tokenizer that ``trained`` has under the same
    name and shape taken from ``trained``; the rest keep their fresh values. A prior's buffers stay fresh
    too (a DiT's latent statistics belong to its own tokenizer); a tokenizer's are taken like its
    parameters (its codebook is what its codes mean)."""
    if trained.family != model.family:
        raise T2VError(f"init_partial: init_from holds a {trained.family} model, not {model.family}")
    state, theirs = model.state_dict(), trained.state_dict()
    tensors = state.items() if isinstance(model, VideoAutoencoder) else model.named_parameters()
    own = [name for name, _ in tensors if not name.startswith("tokenizer.")]
    taken = [name for name in own if name in theirs and theirs[name].shape == state[name].shape]
    if not taken:
        raise T2VError("init_partial: init_from shares no parameter of matching shape with the configured model")
    fresh = [name for name in own if name not in taken]
    log(f"init_partial: {len(taken)} of {len(own)} tensors copied; fresh: {', '.join(fresh) or 'none'}")
    return state | {name: theirs[name] for name in taken}


def freeze_encoding(model) -> None:
    """``train.decoder_only``: only a tokenizer's decoder learns."""
    if not isinstance(model, VideoAutoencoder):
        raise T2VError(f"train.decoder_only: {model.family} is not a video tokenizer or VAE")
    model.freeze_encoding()


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
        start_from_trained(model, train_cfg.init_from, partial=train_cfg.init_partial, log=log)
    elif train_cfg.init_partial:
        raise T2VError(f"{config_path}: train.init_partial needs train.init_from")
    if train_cfg.decoder_only:
        freeze_encoding(model)
    data = build_data(spec.get("data"), where=f"{config_path} data")
    if getattr(getattr(data, "config", None), "recolour", 0) and not isinstance(model, VideoAutoencoder):
        raise T2VError(f"data.recolour: {family} reads captions or labels, which recoloured videos no "
                       "longer match; it is for tokenizer stages only")
    recipe = f"t2v train {family} --config {config_path}"
    return Trainer(model, data, train_cfg, log=log, recipe=recipe).run(resume=resume)
