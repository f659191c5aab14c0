"""A warning for a training run that has collapsed while its loss still looks calm.

Seen in this project: the video VAE under bf16 autocast on a CPU with AVX512-BF16 but no AMX. By step
300 its KL had fallen from about 1000 to 0 and its gradient norm from about 1 to 1e-4, and the PSNR
stalled at 16 dB: the encoder had stopped carrying information and nothing in the progress bar said so.
Healthy runs let the gradient norm drift down by 10x or so and a VAE's KL only grows; a fall of three
orders of magnitude that persists is the signature this watches for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WATCHED = ("grad_norm", "kl")  # logged quantities a healthy run keeps well above zero


@dataclass
class CollapseWatch:
    """Fed each step's logs; says once when a watched quantity has stayed ``factor`` times below its peak
    for ``patience`` steps in a row. Steps up to ``skip`` are left out, so an initial spike is no peak."""

    factor: float = 1000.0
    patience: int = 50
    skip: int = 20
    peaks: dict = field(default_factory=dict)
    low_steps: dict = field(default_factory=dict)
    warned: bool = False

    def check(self, step: int, logs: dict) -> str | None:
        """The warning, on the step the collapse is established (once per run); otherwise None."""
        if step <= self.skip or self.warned:
            return None
        for key in WATCHED:
            value = logs.get(key)
            if value is None or not math.isfinite(value):
                continue
            peak = self.peaks[key] = max(self.peaks.get(key, 0.0), value)
            self.low_steps[key] = self.low_steps.get(key, 0) + 1 if value * self.factor < peak else 0
            if self.low_steps[key] >= self.patience:
                self.warned = True
                return (f"warning: {key} has stayed over {self.factor:g}x below its peak ({value:.3g} against "
                        f"{peak:.3g}) for {self.patience} steps: the run may have collapsed")
        return None
