"""DataLoader worker processes, and the shared memory they hand their batches back through.

Workers start from a fork server, not by forking this process: a fork copies the state of every
thread here (a decoder's, a tokenizer's, OpenMP's) but not the threads, and a child that needs a
lock one of them held waits forever. The dataset is pickled to the workers instead.

A worker puts each tensor into a shared-memory segment (``/dev/shm``) and sends the parent its handle.
Where that memory is missing, full or cannot be allocated (a container's 64 KB ``/dev/shm``, some
sandboxes), the worker's send fails in a background thread that only prints the error, and the parent
waits for the batch forever. So before starting workers we allocate one batch-sized segment ourselves;
if that fails, the data is prepared in the main process instead (the same batches, more slowly), with
one warning that says why. A batch still not back after ``WORKER_TIMEOUT_S`` is an error.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing

import torch
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

PROBE_BYTES = 8 << 20  # about two 16-video batches of 16x64x64 frames
WORKER_TIMEOUT_S = 600  # a batch not back from the workers by then is an error, not a silent hang
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@functools.lru_cache(maxsize=None)
def shared_memory_works(nbytes: int = PROBE_BYTES) -> bool:
    """Whether this process can allocate ``nbytes`` of shared memory, as DataLoader workers must."""
    try:
        torch.empty(nbytes, dtype=torch.uint8).share_memory_()
    except (RuntimeError, OSError) as error:  # cached: this warning comes once
        log.warning(f"DataLoader workers are off: shared memory (/dev/shm) is unusable here "
                    f"({str(error).splitlines()[0]}); preparing data in the main process")
        return False
    return True


def usable_workers(requested: int) -> int:
    """``requested`` worker processes, or 0 where workers could not hand their batches back."""
    return requested if requested > 0 and shared_memory_works() else 0


def worker_loader(dataset: Dataset, workers: int, *, prefetch_factor: int = 2, persistent: bool = False,
                  **kwargs) -> DataLoader:
    """A DataLoader over ``dataset`` with ``usable_workers(workers)`` worker processes; ``kwargs`` go to it."""
    workers = usable_workers(workers)
    if workers:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=persistent, timeout=WORKER_TIMEOUT_S,
                      multiprocessing_context=START_METHOD)
    return DataLoader(dataset, num_workers=workers, **kwargs)
