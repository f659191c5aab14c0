"""``t2v serve``: a web page (Gradio) and a small JSON API (FastAPI) over the bundled models.

Gradio and FastAPI come with the ``web`` extra and are imported only inside this package, so
``import t2v`` never needs them: ``service`` runs the models, ``app`` serves them, ``ui`` is the page.
"""

from __future__ import annotations

import importlib.util

from t2v.errors import T2VError

WEB_PACKAGES = ("fastapi", "gradio", "uvicorn")


def require_web_extra() -> None:
    """A one-line error naming the install command when the web packages are missing."""
    missing = [name for name in WEB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise T2VError(f"t2v serve needs {', '.join(missing)}: pip install -e '.[web]'")
