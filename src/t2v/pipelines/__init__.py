"""Pipelines: what users call. Families whose generation needs more than the generic
``Pipeline`` (stories, image prompts, extension) register a subclass here."""

from __future__ import annotations

from t2v.pipelines.base import Pipeline, load_pipeline
from t2v.pipelines.dit import DiTPipeline
from t2v.pipelines.phenaki import PhenakiPipeline

# family -> pipeline class; families not listed use the generic Pipeline
PIPELINES: dict[str, type[Pipeline]] = {"phenaki": PhenakiPipeline, "dit": DiTPipeline}


def pipeline_class(family: str) -> type[Pipeline]:
    return PIPELINES.get(family, Pipeline)


__all__ = ["Pipeline", "load_pipeline", "pipeline_class"]
