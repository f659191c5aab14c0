"""What the benchmark scripts share: matplotlib without a screen, their plots and how they name files."""

from __future__ import annotations

import json
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def value_and_rate_panels(path, names: list[str], values: list[float], value_title: str, rates: list[float],
                          intervals: list[tuple[float, float]], rate_title: str, *, value_ylim=None) -> None:
    """Two bar panels over the same variants: a measured value, and a rate with its 95% interval (in %)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.2))
    left.bar(names, values, color="tab:gray")
    if value_ylim is not None:
        left.set_ylim(*value_ylim)
    left.set_title(value_title)
    right.bar(names, [100 * r for r in rates],
              yerr=[[100 * (r - low) for r, (low, _) in zip(rates, intervals)],
                    [100 * (high - r) for r, (_, high) in zip(rates, intervals)]], capsize=4, color="tab:blue")
    right.set_title(rate_title)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to the repository when it lies inside it, else as given (for the pages)."""
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def mean_of_last(log_path: Path, key: str, last: int = 20) -> float:
    """Mean of ``key`` over the last ``last`` lines of a trainer's log.jsonl that carry it."""
    records = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    values = [r[key] for r in records if key in r]
    return sum(values[-last:]) / len(values[-last:])
