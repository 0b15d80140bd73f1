"""``Spool``: where a capture writer keeps episodes the store would not take, until it takes them.

Used by ``lightning.capture.writer.EpisodeWriter`` (only). Each writer appends to its own file,
``<spool_dir>/episodes-<pid>-<token>.jsonl`` (one episode document per line, fsynced). To replay,
a writer claims a file by renaming it to ``episodes-<pid>-<token>.r<n>.jsonl`` (atomic: two writers
never replay the same file), reads it back in chunks and deletes it once the store has every
chunk. Files of a process that is gone (its pid no longer runs), or of a writer of this process
that has stopped, are orphans: the next writer on the same directory adopts them.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lightning.domain.episode import Episode

__all__ = ["Spool"]

_LIVE_TOKENS: set[str] = set()  # spools of running writers in this process (their files are not orphans)
_SPOOL_NAME = re.compile(r"^episodes-(\d+)-([0-9a-f]+)(?:\.[a-z0-9]+)?\.jsonl$")


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


def _owner_alive(pid: int, token: str) -> bool:
    if pid == os.getpid():
        return token in _LIVE_TOKENS
    return _pid_alive(pid)


class Spool:
    """One writer's spool files in ``directory``, and the orphans it may adopt.

    Thread-safe: the writer thread replays while a caller's thread may append (a full queue,
    or ``close`` spooling what the thread did not write). ``pending`` says whether there may be
    files to replay; it is set by every append and cleared only when none is left.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = Path(directory)
        self._token = uuid.uuid4().hex[:12]
        self._pid = os.getpid()
        self._path = self._directory / f"episodes-{self._pid}-{self._token}.jsonl"
        self._lock = threading.Lock()
        self._claims = itertools.count(1)
        self._pending = True  # there may be orphans from an earlier run: look once at start

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def path(self) -> Path:
        """The file this spool appends to."""
        return self._path

    @property
    def pending(self) -> bool:
        """There may be spooled episodes to replay (this writer's or orphans)."""
        return self._pending

    def start(self) -> None:
        """This spool's writer runs: its files are not orphans for other writers of this process."""
        _LIVE_TOKENS.add(self._token)

    def stop(self) -> None:
        """This spool's writer has stopped: what it left behind is for the next writer to adopt."""
        _LIVE_TOKENS.discard(self._token)

    def append(self, episodes: Sequence[Episode]) -> None:
        """Append ``episodes`` and fsync; ``OSError`` when the disk refuses (nothing is half-counted)."""
        lines = "".join(json.dumps(e.to_document(), ensure_ascii=False) + "\n" for e in episodes)
        with self._lock:
            self._directory.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            self._pending = True

    def files(self, *, include_orphans: bool) -> list[Path]:
        """This spool's files (appended to or claimed), and with ``include_orphans`` the adoptable ones."""
        if not self._directory.is_dir():
            return []
        found: list[Path] = []
        for path in sorted(self._directory.iterdir()):
            match = _SPOOL_NAME.match(path.name)
            if match is None:
                continue
            pid, token = int(match.group(1)), match.group(2)
            if token == self._token or (include_orphans and not _owner_alive(pid, token)):
                found.append(path)
        return found

    def to_replay(self) -> list[Path]:
        """The files to replay now; none left clears ``pending``."""
        with self._lock:
            files = self.files(include_orphans=True)
            if not files:
                self._pending = False
            return files

    def claim(self, path: Path) -> Path | None:
        """``path`` under a name only this spool uses (renamed unless it already is); None if
        another writer claimed it first."""
        if path.name.startswith(f"episodes-{self._pid}-{self._token}.r"):
            return path
        target = self._directory / f"episodes-{self._pid}-{self._token}.r{next(self._claims)}.jsonl"
        try:
            with self._lock:
                os.rename(path, target)
        except FileNotFoundError:
            return None
        return target

    def read(self, path: Path, *, chunk_size: int, on_corrupt: Callable[[], None]) -> Iterator[list[Episode]]:
        """The episodes of one file in chunks; a line that does not parse (a torn last line after a
        crash) is skipped and reported to ``on_corrupt``. ``FileNotFoundError`` if it is gone."""
        chunk: list[Episode] = []
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    chunk.append(Episode.model_validate_json(line))
                except ValueError:
                    on_corrupt()
                    continue
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def mark_pending(self) -> None:
        """A replay stopped half-way: try again later."""
        self._pending = True

    def settle(self) -> bool:
        """After a replay: True (and ``pending`` cleared) when this spool has no file left."""
        with self._lock:
            self._pending = bool(self.files(include_orphans=False))
        return not self._pending
