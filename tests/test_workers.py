"""DataLoader workers: where shared memory cannot be allocated, batches are prepared in this process
(the same batches, one warning) instead of workers hanging on a batch they cannot hand back."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import pytest
import torch

from t2v.data import workers
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.train.trainer import prepared_batches

DATA = ShapesDataConfig(num_frames=4, height=16, width=16)


@pytest.fixture
def no_shared_memory(monkeypatch):
    def refuse(self):
        raise RuntimeError("unable to allocate shared memory(shm) for file </torch_1>: No space left on device (28)")

    workers.shared_memory_works.cache_clear()
    monkeypatch.setattr(torch.Tensor, "share_memory_", refuse)
    yield
    workers.shared_memory_works.cache_clear()


def test_without_shared_memory_batches_are_prepared_here_and_the_same(no_shared_memory, caplog):
    data = ShapesStream(DATA)
    with caplog.at_level(logging.WARNING, logger="t2v.data.workers"):
        assert workers.usable_workers(2) == 0
        batches = prepared_batches(data, 6, 3, workers=2)
        for position in (6, 9, 12):
            got, want = next(batches), data.batch(position, 3)
            assert got["caption"] == want["caption"] and torch.equal(got["video"], want["video"])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], warnings


def test_usable_shared_memory_keeps_the_workers_asked_for():
    if not workers.shared_memory_works():
        pytest.skip("this machine's shared memory cannot hold a batch")
    assert workers.usable_workers(2) == 2 and workers.usable_workers(0) == 0


def can_mount_a_private_dev_shm() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /dev/shm"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_a_private_dev_shm(), reason="needs unshare -m and mount (root in a namespace)")
def test_a_full_dev_shm_trains_on_instead_of_hanging():
    """The real failure: a 64 KB /dev/shm, in which torch's workers used to wait forever for their batches."""
    script = ("from t2v.data.stream import ShapesDataConfig, ShapesStream; "
              "from t2v.train.trainer import prepared_batches; "
              "b = prepared_batches(ShapesStream(ShapesDataConfig(num_frames=4, height=16, width=16)), 0, 3, 2); "
              "print(sum(len(next(b)['caption']) for _ in range(4)))")
    run = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs /dev/shm && exec "$0" -c "$1"',
                          sys.executable, script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "12"
    assert "DataLoader workers are off: shared memory (/dev/shm) is unusable here" in run.stderr
