"""``EpisodeWriter``: batches episodes into a store on a background thread, spooling while it fails.

Used by ``lightning.capture.EpisodeCapture`` (the public API any agent calls). No SDK here: the
store is any object with ``add(episodes) -> int`` (the ``EpisodeStore`` port).

How an episode travels::

    record(episode)            caller's thread: redact + truncate (services.capture.prepare_episode),
        │                      enqueue, return
        │  in-memory queue (bounded; when full the episode goes straight to the spool file, never dropped)
        ▼
    writer thread              batches up to ``batch_size`` or ``flush_seconds``, then store.add(batch)
        │  store raised?  → append the batch to the spool (``lightning.capture.spool``)
        ▼
    replay                     on start, and before the next write once the store answers again:
                               spool files are claimed, re-added in batches, deleted

Nothing is lost (a batch is on disk before it is forgotten) and nothing is duplicated: episode
ids are fixed when the episode is recorded and the store's ``add`` is insert-if-absent, so
replaying a batch that half-landed is harmless. Spool files of a process that died are adopted
and replayed by the next writer that starts on the same spool directory.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from lightning.capture.policy import CapturePolicy
from lightning.capture.spool import Spool
from lightning.domain.episode import Episode
from lightning.domain.redaction import Redactor
from lightning.services.capture import prepare_episode

__all__ = ["CaptureStats", "EpisodeSink", "EpisodeWriter"]

logger = logging.getLogger(__name__)


class EpisodeSink(Protocol):
    """The part of the ``EpisodeStore`` port capture needs."""

    def add(self, episodes: Sequence[Episode]) -> int: ...


class CaptureStats(BaseModel):
    """Counters of one writer since it started."""

    recorded: int = 0
    written: int = Field(default=0, description="Episodes handed to the store successfully (incl. replays).")
    new: int = Field(default=0, description="Of those, how many the store did not have yet.")
    spooled: int = Field(
        default=0, description="Episodes written to the spool file because the store failed."
    )
    replayed: int = Field(default=0, description="Spooled episodes later written to the store.")
    store_failures: int = 0
    corrupt_spool_lines: int = 0
    lost: int = Field(default=0, description="Episodes neither stored nor spooled (the spool disk refused).")
    pending_spool_files: int = 0
    last_error: str | None = None


_COUNTERS = (
    "recorded",
    "written",
    "new",
    "spooled",
    "replayed",
    "store_failures",
    "corrupt_spool_lines",
    "lost",
)
_FLUSH = object()
_STOP = object()


class EpisodeWriter:
    """Batches episodes into a store on a background thread; spools to disk while the store fails.

    ``record`` never blocks on the store. ``flush`` waits until everything recorded before it is
    in the store or the spool; ``close`` flushes and stops the thread (a final failed write is
    spooled, and replayed by the next writer on the same ``spool_dir``).
    """

    def __init__(
        self,
        store: EpisodeSink,
        *,
        spool_dir: Path,
        policy: CapturePolicy | None = None,
        name: str = "episode-capture",
    ) -> None:
        self._store = store
        self._policy = policy or CapturePolicy()
        self._spool = Spool(Path(spool_dir))
        # The redaction's memory of harmless values lives as long as this writer, not the process.
        self._redactor = Redactor()
        # A deque (append/popleft are atomic) and an Event: cheaper on the caller's thread than queue.Queue.
        self._items: deque[tuple[int, object]] = deque()
        self._wake = threading.Event()
        self._counter = itertools.count(1)
        self._done = 0
        self._done_lock = threading.Condition()
        # Plain counters (a pydantic model per increment is too slow for the caller's path); the
        # caller's thread counts nothing: episodes are counted when the writer takes them.
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._last_error: str | None = None
        self._stats_lock = threading.Lock()
        self._next_retry = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._closed = False

    # --- public ------------------------------------------------------------------------------
    @property
    def policy(self) -> CapturePolicy:
        return self._policy

    @property
    def alive(self) -> bool:
        """The writer thread runs (readiness: capture that cannot write is a reason not to serve)."""
        return self._thread.is_alive()

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    def start(self) -> EpisodeWriter:
        if not self._started:
            self._started = True
            self._spool.start()
            self._thread.start()
        return self

    def record(self, episode: Episode) -> None:
        """Redact, truncate and enqueue ``episode``; never raises for a store problem, never blocks on it."""
        if self._closed:
            raise RuntimeError("episode capture is closed")
        prepared = prepare_episode(
            episode,
            max_result_chars=self._policy.max_result_chars,
            max_text_chars=self._policy.max_text_chars,
            redactor=self._redactor,
        )
        pending = len(self._items)
        if pending >= self._policy.max_queue:
            # Memory is full: the disk takes it (and the writer replays it), so nothing is dropped.
            self._count(recorded=1)
            self._to_spool([prepared])
            return
        self._items.append((next(self._counter), prepared))
        if pending + 1 >= self._policy.batch_size:
            self._wake.set()  # a full batch is waiting: no need to sit out flush_seconds

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every episode recorded before this call is stored or spooled."""
        if not self._started or self._closed:
            return not self._thread.is_alive() or not self._items
        target = next(self._counter)
        self._items.append((target, _FLUSH))
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done_lock:
            while self._done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done_lock.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop. Safe to call twice; episodes still queued after ``timeout`` are spooled."""
        if self._closed:
            return
        if not self._started:
            self._closed = True
            return
        self._items.append((next(self._counter), _STOP))
        self._wake.set()
        self._thread.join(timeout)
        self._closed = True
        if self._thread.is_alive():
            leftovers: list[Episode] = []
            with contextlib.suppress(IndexError):
                while True:
                    _, item = self._items.popleft()
                    if isinstance(item, Episode):
                        leftovers.append(item)
            if leftovers:
                self._count(recorded=len(leftovers))
                self._to_spool(leftovers)
        self._spool.stop()

    def stats(self) -> CaptureStats:
        queued = sum(1 for _, item in list(self._items) if isinstance(item, Episode))
        with self._stats_lock:
            stats = CaptureStats(**self._counts, last_error=self._last_error)
        stats.recorded += queued
        stats.pending_spool_files = len(self._spool.files(include_orphans=True))
        return stats

    # --- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._replay()
        except Exception:  # never let the thread die: the next write retries
            logger.exception("episode capture: replay at start failed")
        stop = False
        while not stop:
            batch, last, stop = self._take_batch()
            try:
                if batch:
                    self._write(batch)
                elif self._spool.pending and time.monotonic() >= self._next_retry:
                    self._replay()
                if stop and self._spool.pending:
                    self._replay()  # last chance before exit; what still fails stays on disk for the next run
            except Exception:  # a bug or a broken disk must not stop capture for good
                logger.exception("episode capture: writer step failed")
            finally:
                if last:
                    with self._done_lock:
                        self._done = max(self._done, last)
                        self._done_lock.notify_all()

    def _take_batch(self) -> tuple[list[Episode], int, bool]:
        """Up to ``batch_size`` episodes, the highest sequence number taken, and whether to stop.

        Waits ``flush_seconds`` at most for a batch to fill; returns early on a flush or stop marker.
        """
        batch: list[Episode] = []
        last = 0
        items = self._items
        # Under a backlog, bigger transactions: far fewer commits per episode when it matters most.
        size = max(self._policy.batch_size, min(len(items), 8 * self._policy.batch_size))
        deadline = time.monotonic() + self._policy.flush_seconds
        while True:
            while items and len(batch) < size:
                seq, item = items.popleft()
                last = seq
                if item is _STOP:
                    self._count(recorded=len(batch))
                    return batch, last, True
                if item is _FLUSH:
                    self._count(recorded=len(batch))
                    return batch, last, False
                batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= size:
                self._count(recorded=len(batch))
                return batch, last, False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._count(recorded=len(batch))
                return batch, last, False
            self._wake.wait(remaining)
            self._wake.clear()  # items are drained right after, so a set racing this clear is not lost

    def _write(self, batch: list[Episode]) -> None:
        # Older spooled episodes go first once the store is back; while it is down, retry it
        # only every ``retry_seconds`` so a slow failure does not stall the writer.
        if self._spool.pending and (time.monotonic() < self._next_retry or not self._replay()):
            self._to_spool(batch)
            return
        try:
            new = self._store.add(batch)
        except Exception as exc:
            self._store_failed(exc)
            self._to_spool(batch)
            return
        self._count(written=len(batch), new=new)

    def _to_spool(self, episodes: list[Episode]) -> None:
        """Append to the spool file; if even the disk refuses, the episodes are counted as lost and logged."""
        try:
            self._spool.append(episodes)
        except OSError as exc:
            self._count(lost=len(episodes))
            logger.error(
                "episode capture: cannot spool %d episodes to %s (%s); they are lost",
                len(episodes),
                self._spool.directory,
                exc,
            )
            return
        self._count(spooled=len(episodes))

    def _store_failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "episode capture: store write failed, spooling to %s: %s", self._spool.directory, message
        )
        with self._stats_lock:
            self._counts["store_failures"] += 1
            self._last_error = message[:500]
        self._next_retry = time.monotonic() + self._policy.retry_seconds

    # --- replay ------------------------------------------------------------------------------
    def _replay(self) -> bool:
        """Write every spool file this writer owns or can adopt; True when none is left."""
        files = self._spool.to_replay()
        if not files:
            return True
        for path in files:
            claimed = self._spool.claim(path)
            if claimed is None:
                continue
            if not self._replay_file(claimed):
                self._spool.mark_pending()
                return False
        return self._spool.settle()

    def _replay_file(self, path: Path) -> bool:
        try:
            chunks = self._spool.read(path, chunk_size=self._policy.batch_size, on_corrupt=self._corrupt_line)
            for chunk in chunks:
                try:
                    new = self._store.add(chunk)
                except Exception as exc:
                    self._store_failed(exc)
                    return False
                self._count(written=len(chunk), new=new, replayed=len(chunk))
        except FileNotFoundError:
            return True
        path.unlink(missing_ok=True)
        logger.info("episode capture: replayed spool file %s", path.name)
        return True

    def _corrupt_line(self) -> None:
        self._count(corrupt_spool_lines=1)

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for key, delta in deltas.items():
                self._counts[key] += delta
