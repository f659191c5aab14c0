"""The server's two shared resources: one worker running generations from a bounded queue, and
a folder of generated files that only the server names and that empties itself after a while."""

from __future__ import annotations

import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from t2v.errors import T2VError

BUSY = "busy, retry later"
SUFFIXES = (".mp4", ".png")  # what a result is made of: the video and its contact sheet
_RESULT_NAME = re.compile(r"^([0-9a-f]{32})(\.mp4|\.png)$")


class Busy(T2VError):
    """The queue is full: the client should retry later (HTTP 503)."""

    status = 503


class TimedOut(T2VError):
    """The request took longer than the server allows (HTTP 504)."""

    status = 504


class NotFound(T2VError):
    """No such generated file, or it was cleaned up (HTTP 404)."""

    status = 404


class JobQueue:
    """One worker thread runs jobs in arrival order; at most ``max_waiting`` wait, more are refused.

    One worker because a generation already uses every CPU thread it is given, and the shared
    models are not meant to run two requests at once.
    """

    def __init__(self, max_waiting: int) -> None:
        self._waiting: queue.Queue = queue.Queue(maxsize=max_waiting)
        self._worker = threading.Thread(target=self._work, name="t2v-serve-worker", daemon=True)
        self._worker.start()

    def submit(self, job: Callable[[], object], deadline: float) -> Future:
        """Queue ``job`` (raises Busy when full); it is skipped if it has not started by ``deadline`` (monotonic s)."""
        future: Future = Future()
        try:
            self._waiting.put_nowait((job, deadline, future))
        except queue.Full:
            raise Busy(BUSY) from None
        return future

    def _work(self) -> None:
        while (item := self._waiting.get()) is not None:
            job, deadline, future = item
            if not future.set_running_or_notify_cancel():
                continue  # its client gave up while it waited
            if time.monotonic() > deadline:
                future.set_exception(TimedOut("the request waited past the time limit; retry later"))
                continue
            try:
                future.set_result(job())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request, the worker carries on
                future.set_exception(e)

    def close(self) -> None:
        """Let the running job finish, drop the waiting ones and stop the worker."""
        while True:
            try:
                _, _, future = self._waiting.get_nowait()
                future.cancel()
            except queue.Empty:
                break
        try:
            self._waiting.put(None, timeout=1)
        except queue.Full:  # filled again meanwhile: the worker is a daemon and ends with the process
            return
        self._worker.join(timeout=60)


class ResultStore:
    """Generated files in one folder under random 32-hex-digit names, found only by those names,
    deleted ``keep_s`` seconds after they were written (a sweeper thread looks every ``sweep_s``)."""

    def __init__(self, root: Path, keep_s: float, *, owns_root: bool) -> None:
        self.root, self.keep_s, self._owns_root = root, keep_s, owns_root
        self.root.mkdir(parents=True, exist_ok=True)
        self._written: dict[str, float] = {}  # id -> time.time() when its files were complete
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="t2v-serve-sweeper", daemon=True)
        self._sweeper.start()

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def path(self, result_id: str, suffix: str) -> Path:
        return self.root / f"{result_id}{suffix}"

    def add(self, result_id: str) -> None:
        """Make a result's files downloadable (they are written completely before this)."""
        with self._lock:
            self._written[result_id] = time.time()

    def find(self, name: str) -> Path:
        """The file called ``name`` if this store wrote it and still has it; NotFound otherwise.

        Only names of the form ``<id>.mp4`` / ``<id>.png`` are looked up, so no request can
        point outside the folder.
        """
        match = _RESULT_NAME.match(name)
        with self._lock:
            known = match is not None and match.group(1) in self._written
        path = self.path(match.group(1), match.group(2)) if known else None
        if path is None or not path.is_file():
            raise NotFound(f"no result {name[:80]!r}: results are kept {self.keep_s / 60:g} minutes")
        return path

    def discard(self, result_id: str) -> None:
        with self._lock:
            self._written.pop(result_id, None)
        for suffix in SUFFIXES:
            self.path(result_id, suffix).unlink(missing_ok=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete results older than ``keep_s`` and any other file that old (e.g. left by a crash)."""
        now = time.time() if now is None else now
        with self._lock:
            expired = [i for i, t in self._written.items() if now - t > self.keep_s]
        for result_id in expired:
            self.discard(result_id)
        stale = [p for p in self.root.iterdir() if now - _modified(p, now) > self.keep_s]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(expired) + len(stale)

    def _sweep_loop(self) -> None:
        interval = min(60.0, max(1.0, self.keep_s / 4))
        while not self._stop.wait(interval):
            self.sweep()

    def close(self) -> None:
        """Stop sweeping; remove the folder if the store made it."""
        self._stop.set()
        self._sweeper.join(timeout=10)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


def _modified(path: Path, now: float) -> float:
    """A file's modification time; ``now`` for folders and files gone meanwhile (never stale)."""
    try:
        return path.stat().st_mtime if path.is_file() else now
    except FileNotFoundError:
        return now
