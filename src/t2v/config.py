"""Dataclass configs: build them from nested dicts (YAML / config.json) and back."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from t2v.errors import T2VError

C = TypeVar("C")


def to_dict(config: Any) -> dict:
    """A dataclass (nested ones included) as plain JSON-able dicts and lists."""
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: dict | None, *, where: str = "config") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys are an error naming the key and the allowed ones."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise T2VError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, where=f"{where}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML file into a dict, with a one-line error if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise T2VError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise T2VError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise T2VError(f"{path} must hold a mapping of sections (model, data, train)")
    return data
