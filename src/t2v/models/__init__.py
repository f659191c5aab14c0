"""Model families: each lives in one file; this registry maps a family name to its model class."""

from __future__ import annotations

import importlib

from t2v.errors import T2VError

# family name -> "module:Class"; modules are imported only when a family is used
FAMILIES = {
    "videogpt-vqvae": "t2v.models.videogpt:VQVAE",
    "videogpt": "t2v.models.videogpt:VideoGPT",
    "phenaki-cvivit": "t2v.models.phenaki:CViViT",
    "phenaki": "t2v.models.phenaki:Phenaki",
    "video-vae": "t2v.models.video_vae:VideoVAE",
    "dit": "t2v.models.dit:DiT",
    "fvd-shapes": "t2v.models.shapes_classifier:ShapesClassifier",
    "matcher": "t2v.models.matcher:VideoTextMatcher",
}


def model_class(family: str):
    """The model class registered for ``family``."""
    if family not in FAMILIES:
        raise T2VError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module, name = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), name)
