"""benchmarks/sweep.py: which options a sweep varies for a model, and its table with named options."""

import importlib.util
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_sweep():
    sys.path.insert(0, str(BENCHMARKS))  # sweep.py imports its neighbour plots.py
    try:
        spec = importlib.util.spec_from_file_location("sweep_benchmark", BENCHMARKS / "sweep.py")
        sweep = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sweep)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return sweep


def sweep_args(**given) -> Namespace:
    return Namespace(**({name: None for name in load_sweep().AXES} | given))


def test_grid_varies_only_the_options_the_model_takes():
    sweep = load_sweep()
    args = sweep_args(guidance=[3.0, 4.0], sampler=["ddim", "flow-euler"], steps=[20], temperature=[0.7, 1.0])
    dit = SimpleNamespace(model=SimpleNamespace(sampling_options=("guidance", "steps", "sampler")))
    cells = sweep.grid(args, dit)
    assert len(cells) == 4  # 2 guidance x 2 samplers x 1 step count; no temperature for a diffusion model
    assert {c["sampler"] for c in cells} == {"ddim", "flow-euler"} and all(c["steps"] == 20 for c in cells)
    assert all("temperature" not in c for c in cells)
    token_model = SimpleNamespace(model=SimpleNamespace(sampling_options=("guidance", "temperature")))
    assert all(set(c) == {"guidance", "temperature"} for c in sweep.grid(args, token_model))


def test_table_shows_sampler_names_and_marks_the_best():
    sweep = load_sweep()
    rows = [{"guidance": 4.0, "sampler": name, "steps": 20, "all_right": rate, "ci95": [rate - 0.1, rate + 0.1],
             "seen_all_right": rate, "held_out_all_right": rate} for name, rate in (("ddim", 0.8), ("dpm++", 0.7))]
    text = sweep.table(rows, {"model": "dit-shapes", "prompts": "n=2"})
    assert "| guidance | sampler | steps |" in text
    assert "| 4 | ddim | 20 | 80% | 80% | 80.0% [70.0%, 90.0%] **(best)** |" in text
    assert "| 4 | dpm++ | 20 |" in text and text.count("(best)") == 1
