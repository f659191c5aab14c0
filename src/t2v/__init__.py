"""t2v: text-to-video models in one toolkit. Public API: ``load_pipeline`` and ``Video``."""

from t2v.errors import T2VError

__all__ = ["load_pipeline", "Video", "read_video", "T2VError"]
__version__ = "0.1.0"
# the model of `t2v generate`, `load_pipeline()` and `t2v serve` when none is named: the best held-out
# (compositional) rate measured (docs/results.md), and the fastest
DEFAULT_MODEL = "dit-shapes"


def __getattr__(name: str):
    # imported on first use, so `import t2v.data.shapes` does not pull in torch models and PyAV
    if name == "load_pipeline":
        from t2v.pipelines.base import load_pipeline

        return load_pipeline
    if name in ("Video", "read_video"):
        from t2v import video

        return getattr(video, name)
    raise AttributeError(f"module 't2v' has no attribute {name!r}")
