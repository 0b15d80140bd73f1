"""LocalDatasetWriter: a dataset build's files in a private work folder, on both cores.

The ``DatasetWriter`` port (``lightning/ports/writer.py``), built by the container with the work folder
under ``LIGHTNING_HOME/datasets/.work``. Lines are hashed and written on a background thread (hashlib and
file writes release the GIL on large buffers, so the second core hashes and writes while the first
shapes examples). For big builds ``build`` runs the service's example builder in a forked helper process
while the caller keeps reading the episode store: reading and shaping then use both cores, and the output
is byte-identical to the in-process build (one consumer sees the items in store order). A killed build
leaves its folder behind, invisible to every listing; stale ones are swept by the next build.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lightning.domain.dataset import Split
from lightning.domain.errors import InvalidInput, TransientProviderError
from lightning.ports.writer import ExampleBuilder, SplitFile

STALE_WORK_SECONDS = 24 * 3600
PARALLEL_MIN_ITEMS = 20_000
"""Builds reading at least this many episodes shape them in a forked helper process (both cores)."""
_CHUNK_BYTES = 1 << 20
_BATCH = 2000

R = TypeVar("R")


class _Sink:
    """Hashes and writes chunks of one file on the work folder's writer thread, in order."""

    def __init__(self, path: Path, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.sha = hashlib.sha256()
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close(), after the last chunk
        self._pool = pool
        self._pending: Future[None] | None = None

    def _write(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        self._handle.write(chunk)

    def submit(self, chunk: bytes) -> None:
        if self._pending is not None:
            self._pending.result()  # re-raise a write error (disk full) here, on the caller's thread
        self._pending = self._pool.submit(self._write, chunk)

    def close(self) -> None:
        try:
            if self._pending is not None:
                self._pending.result()
                self._pending = None
        finally:
            self._handle.close()


@dataclass
class _SplitWriter:
    """One split's temporary JSONL file (the ``LineSink``), hashed and counted as it is written."""

    split: Split
    path: Path
    ids_path: Path
    sink: _Sink
    ids: BinaryIO
    buffer: list[bytes] = field(default_factory=list)
    buffered: int = 0
    examples: int = 0
    nbytes: int = 0
    tokens: int = 0
    closed: bool = False

    def write(self, line: bytes, episode_ids: str, tokens: int) -> None:
        self.buffer.append(line)
        size = len(line)
        self.buffered += size
        self.nbytes += size
        self.examples += 1
        self.tokens += tokens
        self.ids.write(episode_ids.encode("utf-8"))
        if self.buffered >= _CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.sink.submit(b"".join(self.buffer))
            self.buffer.clear()
            self.buffered = 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self.sink.close()
            self.ids.close()


class LocalWork:
    """The ``DatasetWork`` of one build: a private folder, removed whatever happens."""

    def __init__(self, root: Path, name: str) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            _sweep_stale(root)
            self.dir = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
        except OSError as exc:
            raise InvalidInput(
                f"cannot write build files under {root}: {exc.strerror or exc}; make LIGHTNING_HOME writable"
            ) from None
        self.writers: dict[Split, _SplitWriter] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-writer")

    def sink(self, split: Split) -> _SplitWriter:
        found = self.writers.get(split)
        if found is None:
            path = self.dir / f"{split}.jsonl"
            ids_path = self.dir / f"{split}.ids"
            found = self.writers[split] = _SplitWriter(
                split,
                path,
                ids_path,
                _Sink(path, self._pool),
                open(ids_path, "wb", buffering=1 << 16),  # noqa: SIM115
            )
        return found

    def _close(self) -> None:
        try:
            for writer in self.writers.values():
                writer.close()
        finally:
            self._pool.shutdown(wait=True)

    def merge(self, source: Split, into: Split) -> int:
        self._close()
        moved_from = self.writers.pop(source, None)
        if moved_from is None:
            return 0
        target = self.writers.get(into)
        if target is None:
            target = self.sink(into)  # an empty file (the writer thread is not needed to create it)
            target.close()
        with open(target.path, "ab") as out, open(moved_from.path, "rb") as src:
            for line in src:
                out.write(line)
                target.sink.sha.update(line)
        with open(target.ids_path, "ab") as out_ids:
            out_ids.write(moved_from.ids_path.read_bytes())
        target.examples += moved_from.examples
        target.nbytes += moved_from.nbytes
        target.tokens += moved_from.tokens
        moved_from.path.unlink()
        moved_from.ids_path.unlink()
        return moved_from.examples

    def finish(self) -> dict[Split, SplitFile]:
        self._close()
        return {
            split: SplitFile(
                split, w.path, w.ids_path, w.sink.sha.hexdigest(), w.examples, w.nbytes, w.tokens
            )
            for split, w in sorted(self.writers.items())
        }

    def remove(self) -> None:
        try:
            self._close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _sweep_stale(root: Path) -> None:
    cutoff = time.time() - STALE_WORK_SECONDS
    for entry in root.glob(".build-*"):
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


class LocalDatasetWriter:
    """The ``DatasetWriter`` port on the local disk (``root``: the work folder of every build).

    ``parallel``: ``True``/``False`` forces the helper process on/off; ``None`` uses it for builds of
    ``PARALLEL_MIN_ITEMS`` or more where ``fork`` exists (Linux, the Functions host)."""

    def __init__(self, *, root: Path, parallel: bool | None = None) -> None:
        self.root = root
        self.parallel = parallel

    def open(self, name: str) -> LocalWork:
        return LocalWork(self.root, name)

    def build(
        self,
        items: Iterable[Any],
        make_builder: Callable[[], ExampleBuilder[R]],
        *,
        expected: int,
        limited: bool,
    ) -> R:
        parallel = self.parallel
        if parallel is None:
            parallel = pipeline_available() and expected >= PARALLEL_MIN_ITEMS and not limited
        if parallel:
            result: R = _run_pipeline(items, make_builder)
            return result
        builder = make_builder()
        for item in items:
            if not builder.add(item):
                break
        return builder.finish()


def pipeline_available() -> bool:
    """The forked helper needs ``fork``; elsewhere builds run in one process."""
    return "fork" in multiprocessing.get_all_start_methods()


def _run_pipeline(items: Iterable[Any], make_builder: Callable[[], ExampleBuilder[R]]) -> Any:
    """Consume ``items`` here while a forked helper process builds from them. The helper exits when this
    process dies: a killed build stops entirely."""
    ctx = multiprocessing.get_context("fork")
    items_r, items_w = ctx.Pipe(duplex=False)
    result_r, result_w = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_consume,
        args=(make_builder, items_r, items_w, result_r, result_w),
        daemon=True,
        name="dataset-builder",
    )
    process.start()
    items_r.close()
    result_w.close()
    try:
        try:
            batch: list[Any] = []
            for item in items:
                batch.append(item)
                if len(batch) >= _BATCH:
                    items_w.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                    batch = []
            if batch:
                items_w.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            items_w.send_bytes(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the helper stopped early (an error): its report says why
        finally:
            items_w.close()
        try:
            outcome = pickle.loads(result_r.recv_bytes())
        except EOFError:
            process.join(timeout=10)
            raise TransientProviderError(
                f"the dataset builder process died (exit code {process.exitcode}); build again",
                provider="dataset-writer",
            ) from None
    finally:
        result_r.close()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "invalid":
        raise InvalidInput(outcome[1], field=outcome[2])
    raise TransientProviderError(
        f"the dataset builder process failed: {outcome[1]}; build again", provider="dataset-writer"
    )


def _consume(
    make_builder: Callable[[], ExampleBuilder[Any]], items_r: Any, items_w: Any, result_r: Any, result_w: Any
) -> None:
    """The helper process: builds from the items it receives, reports the builder's result (or the error)."""
    items_w.close()  # else the end-of-stream never arrives when the parent dies
    result_r.close()
    outcome: tuple[Any, ...]
    try:
        builder = make_builder()
        full = False
        while True:
            data = items_r.recv_bytes()
            if not data:
                break
            if full:
                continue
            for item in pickle.loads(data):
                if not builder.add(item):
                    full = True
                    break
        outcome = ("ok", builder.finish())
    except EOFError:
        os._exit(1)  # the caller is gone (killed): nobody to report to, nothing to clean
    except InvalidInput as exc:
        outcome = ("invalid", exc.message, exc.field)
    except BaseException as exc:
        outcome = ("error", f"{type(exc).__name__}: {exc}", None)
    try:
        result_w.send_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass
    finally:
        items_r.close()
        result_w.close()
