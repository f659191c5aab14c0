"""Thread count for token-by-token decoding on a CPU."""

from __future__ import annotations

from contextlib import contextmanager

import torch

SMALL_BATCH_ROWS = 4  # at most this many rows per step: one thread is faster (measured in benchmarks/latency.py)


@contextmanager
def single_thread_for_small_batches(rows: int):
    """Run the block on one CPU thread when each step multiplies only a few rows.

    A decoding step of a small batch is a chain of tiny matrix products; waking and joining
    a second thread for each costs more than it saves (0.81 s against 1.09 s per VideoGPT
    video on 2 cores). Larger batches keep every thread.
    """
    before = torch.get_num_threads()
    if rows <= SMALL_BATCH_ROWS and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
