"""Episode capture: redact, batch, write in the background, spool to disk when the store is down.

Used by ``lightning.capture`` (the public API any agent calls) and through it by
the reference agent. No SDK here: the store is any object with
``add(episodes) -> int`` (the ``EpisodeStore`` port).

How an episode travels::

    record(episode)            caller's thread: redact + truncate (cheap fast path), enqueue, return
        │  in-memory queue (bounded; when full the episode goes straight to the spool file, never dropped)
        ▼
    writer thread              batches up to ``batch_size`` or ``flush_seconds``, then store.add(batch)
        │  store raised?  → append the batch to  <spool_dir>/episodes-<pid>-<token>.jsonl
        ▼
    replay                     on start, and before the next write once the store answers again:
                               spool files are claimed (atomic rename), re-added in batches, deleted

Nothing is lost (a batch is on disk before it is forgotten) and nothing is
duplicated: episode ids are fixed when the episode is recorded and the store's
``add`` is insert-if-absent, so replaying a batch that half-landed is harmless.
Spool files of a process that died (its pid is gone) are adopted and replayed
by the next writer that starts on the same spool directory.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import Episode
from lightning.domain.redaction import (
    REDACTED,
    is_secret_field,
    may_contain_sensitive,
    redact_text,
    truncate_text,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CapturePolicy",
    "CaptureStats",
    "EpisodeSink",
    "EpisodeWriter",
    "prepare_episode",
    "shrink_result",
]


class EpisodeSink(Protocol):
    """The part of the ``EpisodeStore`` port capture needs."""

    def add(self, episodes: Sequence[Episode]) -> int: ...


class CapturePolicy(BaseModel):
    """How capture batches, truncates and retries (from ``CAPTURE_*`` settings)."""

    model_config = ConfigDict(frozen=True)

    batch_size: int = Field(
        default=500, ge=1, description="Episodes per store write (up to 8x that while a backlog drains)."
    )
    flush_seconds: float = Field(default=0.5, gt=0, description="Longest an episode waits for its batch.")
    max_result_chars: int = Field(default=8000, ge=100, description="Results longer than this (JSON) shrink.")
    max_text_chars: int = Field(
        default=8000, ge=100, description="Query/response/error longer than this are cut."
    )
    max_queue: int = Field(
        default=100_000, ge=1, description="Episodes held in memory before spooling directly."
    )
    retry_seconds: float = Field(default=2.0, gt=0, description="Pause between store retries while spooling.")


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


# --------------------------------------------------------------------------------------------
# Redaction and truncation (the caller's thread; cheap when there is nothing to do)


_BIG_INT = 10**20  # ints below this print in at most 21 characters


class _Scan:
    """What one pass over an episode's values found: anything to redact, and a JSON size bound."""

    __slots__ = ("sensitive", "size")

    def __init__(self) -> None:
        self.sensitive = False
        self.size = 0  # an upper bound of len(json.dumps(value)), so small values skip the dump


def _scan(value: Any, scan: _Scan) -> None:
    kind = type(value)
    if kind is str:
        if not scan.sensitive and _may_be_sensitive(value):
            scan.sensitive = True
        scan.size += 2 * len(value) + 2  # every char escaped at most to two, plus quotes
    elif kind is dict:
        size = 2
        for key, item in value.items():
            if type(key) is str:
                size += 2 * len(key) + 4
                secret = _KEY_CACHE.get(key)
                if secret is None:
                    secret = _secret_key(key)
                if secret:
                    scan.sensitive = True
            else:
                size += len(str(key)) + 4
            # Leaves inline: most nodes are, and a call per leaf is most of the cost.
            item_kind = type(item)
            if item_kind is str:
                size += 2 * len(item) + 2
                if not scan.sensitive and _may_be_sensitive(item):
                    scan.sensitive = True
            elif (
                item_kind is float
                or item_kind is bool
                or item is None
                or (item_kind is int and -_BIG_INT < item < _BIG_INT)
            ):
                size += 25
            else:
                _scan(item, scan)
        scan.size += size
    elif kind is list or kind is tuple:
        scan.size += 2
        for item in value:
            scan.size += 2
            _scan(item, scan)
    elif value is None or kind is bool or kind is float or (kind is int and -_BIG_INT < value < _BIG_INT):
        scan.size += 25
    elif isinstance(value, str | Mapping | list | tuple):  # subclasses: rare, take the general path
        _scan(
            str(value)
            if isinstance(value, str)
            else dict(value)
            if isinstance(value, Mapping)
            else list(value),
            scan,
        )
    else:  # big ints, datetimes, ...: json.dumps(default=str) writes str(value)
        scan.size += 2 * len(str(value)) + 2


def _redact(value: Any) -> Any:
    """``redact_value`` with the cached checks above (same result; tested against it)."""
    kind = type(value)
    if kind is str:
        return redact_text(value) if _may_be_sensitive(value) else value
    if kind is dict or isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            secret = isinstance(item, str | int) and not isinstance(item, bool) and item != ""
            if secret and isinstance(key, str) and _secret_key(key):
                out[key] = REDACTED
                continue
            out[key] = _redact(item)
        return out
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


# Tool results repeat the same short strings (months, product names, regions) in every episode;
# remembering the short strings that hold nothing sensitive makes the common check a set lookup.
_SHORT = 64
_HARMLESS: set[str] = set()
_KEY_CACHE: dict[str, bool] = {}
_CACHE_LIMIT = 50_000


def _may_be_sensitive(text: str) -> bool:
    if text in _HARMLESS:
        return False
    if len(text) > _SHORT:
        return may_contain_sensitive(text)
    if may_contain_sensitive(text):
        return True  # never cached: a secret should not outlive the request in a process-wide cache
    if len(_HARMLESS) >= _CACHE_LIMIT:
        _HARMLESS.clear()
    _HARMLESS.add(text)
    return False


def _secret_key(key: str) -> bool:
    cached = _KEY_CACHE.get(key)
    if cached is None:
        cached = is_secret_field(key)
        if len(_KEY_CACHE) >= _CACHE_LIMIT:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = cached
    return cached


def shrink_result(value: Any, max_chars: int) -> Any:
    """``value`` whose JSON fits in ``max_chars``: long lists are halved (``_truncated`` says so),
    long strings cut, and as a last resort the JSON text itself is cut. Top-level keys survive."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= max_chars:
        return value
    if isinstance(value, dict):
        shrunk: dict[str, Any] = dict(value)
        for _ in range(64):
            lists = [(len(v), k) for k, v in shrunk.items() if isinstance(v, list) and len(v) > 1]
            if not lists:
                break
            _, key = max(lists)
            original = value[key] if isinstance(value.get(key), list) else shrunk[key]
            shrunk[key] = shrunk[key][: len(shrunk[key]) // 2]
            shrunk["_truncated"] = {**shrunk.get("_truncated", {}), key: len(original)}
            if len(json.dumps(shrunk, default=str, ensure_ascii=False)) <= max_chars:
                return shrunk
        limit = max(20, max_chars // max(1, 2 * len(shrunk)))
        shrunk = {k: truncate_text(v, limit) if isinstance(v, str) else v for k, v in shrunk.items()}
        if len(json.dumps(shrunk, default=str, ensure_ascii=False)) <= max_chars:
            return shrunk
    return truncate_text(text, max_chars)


def prepare_episode(episode: Episode, *, max_result_chars: int = 8000, max_text_chars: int = 8000) -> Episode:
    """The episode as it may leave the process: secrets/PII redacted, long values truncated.

    The common case (nothing sensitive, nothing too long) returns ``episode`` itself after one
    cheap scan of its values; only episodes that might hold something pay for the patterns, and
    then only the strings that might.
    """
    scan = _Scan()
    _scan(episode.result, scan)
    result_size = scan.size
    _scan(episode.state.query, scan)
    _scan(episode.state.context, scan)
    _scan(episode.action.arguments, scan)
    extra = episode.state.__pydantic_extra__ or {}
    if extra:
        _scan(extra, scan)
    if episode.response:
        _scan(episode.response, scan)
    if episode.error:
        _scan(episode.error, scan)
    update: dict[str, Any] = {}
    if scan.sensitive:
        state = episode.state.model_copy(
            update={
                "query": _redact(episode.state.query),
                "context": _redact(episode.state.context),
                **{key: _redact(item) for key, item in extra.items()},
            }
        )
        update["state"] = state
        update["action"] = episode.action.model_copy(update={"arguments": _redact(episode.action.arguments)})
        update["result"] = _redact(episode.result)
        if episode.response:
            update["response"] = _redact(episode.response)
        if episode.error:
            update["error"] = _redact(episode.error)
    result = update.get("result", episode.result)
    if result is not None and result_size > max_result_chars:
        shrunk = shrink_result(result, max_result_chars)
        if shrunk is not result:
            update["result"] = shrunk
    query = update["state"].query if "state" in update else episode.state.query
    if len(query) > max_text_chars:
        base = update.get("state", episode.state)
        update["state"] = base.model_copy(update={"query": truncate_text(query, max_text_chars)})
    for name in ("response", "error"):
        text = update.get(name, getattr(episode, name))
        if text is not None and len(text) > max_text_chars:
            update[name] = truncate_text(text, max_text_chars)
    return episode.model_copy(update=update) if update else episode


# --------------------------------------------------------------------------------------------
# The writer

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
_LIVE_TOKENS: set[str] = set()  # writers running in this process (their spool files are not orphans)
_SPOOL_NAME = re.compile(r"^episodes-(\d+)-([0-9a-f]+)(?:\.[a-z0-9]+)?\.jsonl$")
_FLUSH = object()
_STOP = object()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


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
        self._spool_dir = Path(spool_dir)
        self._token = uuid.uuid4().hex[:12]
        self._pid = os.getpid()
        self._spool_path = self._spool_dir / f"episodes-{self._pid}-{self._token}.jsonl"
        # A deque (append/popleft are atomic) and an Event: cheaper on the caller's thread than queue.Queue.
        self._items: deque[tuple[int, object]] = deque()
        self._wake = threading.Event()
        self._counter = itertools.count(1)
        self._done = 0
        self._done_lock = threading.Condition()
        self._spool_lock = threading.Lock()
        # Plain counters (a pydantic model per increment is too slow for the caller's path); the
        # caller's thread counts nothing: episodes are counted when the writer takes them.
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._last_error: str | None = None
        self._stats_lock = threading.Lock()
        self._spool_pending = True  # there may be orphans from an earlier run: look once at start
        self._next_retry = 0.0
        self._claims = itertools.count(1)
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
        return self._spool_path

    def start(self) -> EpisodeWriter:
        if not self._started:
            self._started = True
            _LIVE_TOKENS.add(self._token)
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
        )
        pending = len(self._items)
        if pending >= self._policy.max_queue:
            # Memory is full: the disk takes it (and the writer replays it), so nothing is dropped.
            self._count(recorded=1)
            self._spool([prepared])
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
                self._spool(leftovers)
        _LIVE_TOKENS.discard(self._token)

    def stats(self) -> CaptureStats:
        queued = sum(1 for _, item in list(self._items) if isinstance(item, Episode))
        with self._stats_lock:
            stats = CaptureStats(**self._counts, last_error=self._last_error)
        stats.recorded += queued
        stats.pending_spool_files = len(self._spool_files(include_orphans=True))
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
                elif self._spool_pending and time.monotonic() >= self._next_retry:
                    self._replay()
                if stop and self._spool_pending:
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
        if self._spool_pending and (time.monotonic() < self._next_retry or not self._replay()):
            self._spool(batch)
            return
        try:
            new = self._store.add(batch)
        except Exception as exc:
            self._store_failed(exc)
            self._spool(batch)
            return
        self._count(written=len(batch), new=new)

    def _spool(self, episodes: list[Episode]) -> None:
        """Append to the spool file; if even the disk refuses, the episodes are counted as lost and logged."""
        try:
            self._append_to_spool(episodes)
        except OSError as exc:
            self._count(lost=len(episodes))
            logger.error(
                "episode capture: cannot spool %d episodes to %s (%s); they are lost",
                len(episodes),
                self._spool_dir,
                exc,
            )

    def _store_failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        logger.warning("episode capture: store write failed, spooling to %s: %s", self._spool_dir, message)
        with self._stats_lock:
            self._counts["store_failures"] += 1
            self._last_error = message[:500]
        self._next_retry = time.monotonic() + self._policy.retry_seconds

    # --- spool -------------------------------------------------------------------------------
    def _append_to_spool(self, episodes: list[Episode]) -> None:
        lines = "".join(json.dumps(e.to_document(), ensure_ascii=False) + "\n" for e in episodes)
        with self._spool_lock:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
            with self._spool_path.open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            self._spool_pending = True
        self._count(spooled=len(episodes))

    def _spool_files(self, *, include_orphans: bool) -> list[Path]:
        if not self._spool_dir.is_dir():
            return []
        mine: list[Path] = []
        for path in sorted(self._spool_dir.iterdir()):
            match = _SPOOL_NAME.match(path.name)
            if match is None:
                continue
            pid, token = int(match.group(1)), match.group(2)
            if token == self._token or (include_orphans and not self._owner_alive(pid, token)):
                mine.append(path)
        return mine

    @staticmethod
    def _owner_alive(pid: int, token: str) -> bool:
        if pid == os.getpid():
            return token in _LIVE_TOKENS
        return _pid_alive(pid)

    def _claimed_by_me(self, path: Path) -> bool:
        """A file this writer renamed for replay (``….rN.jsonl``), as opposed to its live spool file."""
        return path.name.startswith(f"episodes-{self._pid}-{self._token}.r")

    def _claim(self, path: Path) -> Path | None:
        """Rename ``path`` to a name only this writer uses; None if another writer got it first."""
        target = self._spool_dir / f"episodes-{self._pid}-{self._token}.r{next(self._claims)}.jsonl"
        try:
            with self._spool_lock:
                os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

    def _replay(self) -> bool:
        """Write every spool file this writer owns or can adopt; True when none is left."""
        with self._spool_lock:
            files = self._spool_files(include_orphans=True)
            if not files:
                self._spool_pending = False
                return True
        for path in files:
            claimed = path if self._claimed_by_me(path) else self._claim(path)
            if claimed is None:
                continue
            if not self._replay_file(claimed):
                self._spool_pending = True
                return False
        with self._spool_lock:
            self._spool_pending = bool(self._spool_files(include_orphans=False))
        return not self._spool_pending

    def _replay_file(self, path: Path) -> bool:
        try:
            for chunk in self._read_spool(path):
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

    def _read_spool(self, path: Path) -> Iterator[list[Episode]]:
        chunk: list[Episode] = []
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    chunk.append(Episode.model_validate_json(line))
                except ValueError:
                    # A torn last line after a crash: the rest of the file is still good.
                    self._count(corrupt_spool_lines=1)
                    continue
                if len(chunk) >= self._policy.batch_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for key, delta in deltas.items():
                self._counts[key] += delta
