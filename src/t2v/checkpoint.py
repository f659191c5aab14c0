"""Model checkpoints on disk: ``config.json`` + ``model.safetensors`` + ``README.md`` (model card).

Nothing is ever unpickled. Every way a checkpoint can be wrong (missing, truncated, foreign,
another family, another format version, mismatched tensors) fails with one line naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from t2v.config import from_dict, to_dict
from t2v.errors import T2VError

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
TRAINING_FILE = "training.json"
INT8_SCALE = ".int8_scale"  # key suffix of the float16 row scales of a weight stored as int8
WEIGHT_PRECISIONS = ("float32", "float16", "int8")


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the file into place, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically write tensors (made contiguous and unshared) to a safetensors file."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(clean, tmp, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (int8-stored weights come back as float); truncated or foreign files give a
    one-line T2VError."""
    path = Path(path)
    if not path.is_file():
        raise T2VError(f"missing weights file {path}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise T2VError(f"{path} is not a readable safetensors file (truncated or foreign?): {e}") from None
    return dequantize_int8(tensors, where=str(path))


def quantize_int8(tensors: dict[str, torch.Tensor], *, min_numel: int = 4096) -> dict[str, torch.Tensor]:
    """Weight-only int8 storage, about half the bytes of float16: every float tensor of 2 or more dims and at
    least ``min_numel`` elements (linear and conv weights) becomes int8 with one float16 scale per output row
    (symmetric, round to nearest: error at most half a step, 1/254 of the row's largest magnitude); other float
    tensors are stored in float16, the rest as they are."""
    out = {}
    for key, value in tensors.items():
        if not value.is_floating_point():
            out[key] = value
        elif value.dim() < 2 or value.numel() < min_numel:
            out[key] = value.half()
        else:
            rows = value.detach().float().flatten(1)  # (out, in x kernel)
            scale = (rows.abs().amax(dim=1, keepdim=True) / 127).clamp_min(1e-8).half()  # (out, 1)
            codes = torch.round(rows / scale.float()).clamp(-127, 127).to(torch.int8)
            out[key], out[key + INT8_SCALE] = codes.reshape(value.shape), scale
    return out


def dequantize_int8(tensors: dict[str, torch.Tensor], *, where: str = "weights") -> dict[str, torch.Tensor]:
    """The float32 weights of ``quantize_int8``'s output (tensors without int8 scales pass through)."""
    scales = {key[: -len(INT8_SCALE)]: value for key, value in tensors.items() if key.endswith(INT8_SCALE)}
    out = {key: value for key, value in tensors.items() if not key.endswith(INT8_SCALE)}
    for key, scale in scales.items():
        codes = out.get(key)
        if codes is None or codes.dtype != torch.int8 or scale.shape != (codes.shape[0], 1):
            raise T2VError(f"{where}: int8 scales {key + INT8_SCALE!r} without a matching int8 tensor {key!r}")
        out[key] = (codes.float().flatten(1) * scale.float()).reshape(codes.shape)
    return out


def save_model(directory: str | Path, model: nn.Module, *, card: str | None = None, weights: str = "float32",
               state_dict: dict[str, torch.Tensor] | None = None, captions: str | None = None) -> Path:
    """Write ``model`` (its ``family`` and dataclass ``config``) as a checkpoint directory; ``captions``
    names the caption vocabulary it was trained on, which pipelines rewrite prompts into. ``weights``: their
    storage, one of WEIGHT_PRECISIONS (int8: large matrices as int8, the rest float16; see ``quantize_int8``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = state_dict if state_dict is not None else model.state_dict()
    save_tensors(directory / WEIGHTS_FILE, stored_weights(tensors, weights))
    config = {"family": model.family, "format_version": FORMAT_VERSION, "config": to_dict(model.config)}
    if captions is not None:
        config["captions"] = captions
    atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    if card is not None:
        atomic_write(directory / CARD_FILE, lambda tmp: Path(tmp).write_text(card))
    return directory


def stored_weights(tensors: dict[str, torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    """``tensors`` as a checkpoint stores them in ``precision`` (one of WEIGHT_PRECISIONS)."""
    if precision == "int8":
        return quantize_int8(tensors)
    if precision == "float16":
        return {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    if precision == "float32":
        return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    raise T2VError(f"weight precision must be one of {', '.join(WEIGHT_PRECISIONS)}, not {precision!r}")


def convert_checkpoint(source: str | Path, out: str | Path, precision: str) -> Path:
    """Copy the checkpoint at ``source`` to ``out`` with its weights stored in ``precision``; its config, card
    and training history come along, its measured scores (scores.json) do not: they belong to the old weights."""
    import shutil

    from t2v.eval.record import SCORES_FILE, card_without_scores

    source, out = Path(source), Path(out)
    read_config(source)
    if out.resolve() == source.resolve():
        raise T2VError(f"convert: {out} is the source checkpoint; write the converted copy elsewhere")
    tensors = stored_weights(load_tensors(source / WEIGHTS_FILE), precision)  # checks precision before any write
    out.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, TRAINING_FILE):
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    if (source / CARD_FILE).is_file():
        card = card_without_scores((source / CARD_FILE).read_text())
        atomic_write(out / CARD_FILE, lambda tmp: Path(tmp).write_text(card))
    (out / SCORES_FILE).unlink(missing_ok=True)
    save_tensors(out / WEIGHTS_FILE, tensors)
    return out


def read_config(directory: str | Path, *, family: str | None = None) -> dict:
    """Read and validate ``config.json``; ``family`` (if given) must match."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise T2VError(f"checkpoint directory not found: {directory}")
    if not path.is_file():
        raise T2VError(f"missing {path}: a checkpoint directory holds config.json and model.safetensors")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise T2VError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or "family" not in config or "config" not in config:
        raise T2VError(f"{path} is not a t2v checkpoint config (no 'family' and 'config' keys)")
    if config.get("format_version") != FORMAT_VERSION:
        raise T2VError(f"{path} has format version {config.get('format_version')!r}; this t2v reads version {FORMAT_VERSION}")
    if family is not None and config["family"] != family:
        raise T2VError(f"{path} is a {config['family']!r} checkpoint, expected {family!r}")
    return config


def load_model(directory: str | Path, *, family: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a checkpoint directory, in float32 and eval mode."""
    from t2v.models import model_class  # registry imports every family; import late to keep start-up light

    directory = Path(directory)
    meta = read_config(directory, family=family)
    cls = model_class(meta["family"])
    model = cls(from_dict(cls.config_class, meta["config"], where=str(directory / CONFIG_FILE)))
    load_weights(model, directory / WEIGHTS_FILE)
    return model.to(device).eval()


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into ``model``, cast to its dtypes; any missing or extra key is an error."""
    tensors = load_tensors(path)
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise T2VError(f"{path} does not fit this model ({what}; {len(missing)} missing, {len(extra)} unexpected tensors)")
    for key, value in tensors.items():
        if value.shape != own[key].shape:
            raise T2VError(f"{path}: tensor {key!r} has shape {tuple(value.shape)}, model expects {tuple(own[key].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})


def read_training_stages(directory: str | Path) -> list[dict]:
    """How a checkpoint was trained (``training.json`` written by the trainer), or [] if unrecorded."""
    path = Path(directory) / TRAINING_FILE
    return json.loads(path.read_text()).get("stages", []) if path.is_file() else []
