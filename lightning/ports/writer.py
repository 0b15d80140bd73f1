"""DatasetWriter: where a dataset build writes its JSONL files before they are uploaded.

Implemented by ``lightning.adapters.files.writer.LocalDatasetWriter`` (a private work folder, hashing
on a background thread, and for big builds a forked helper process that shapes examples while the
caller keeps reading the episode store). Used by ``lightning.services.datasets``: the service decides
*what* goes in each split (shaping, redaction, token counts, the provider's rules); the writer decides
*how* bytes reach the disk and on how many cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lightning.domain.dataset import Split

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True)
class SplitFile:
    """A finished split file in the work folder."""

    split: Split
    path: Path
    ids_path: Path
    sha256: str
    examples: int
    nbytes: int
    tokens: int


class LineSink(Protocol):
    """One split's file: lines go in, in order; counts are kept as they are written."""

    @property
    def examples(self) -> int: ...

    @property
    def nbytes(self) -> int: ...

    def write(self, line: bytes, episode_ids: str, tokens: int) -> None:
        """Append one example (its JSON line with the newline) and the episode ids it came from."""
        ...


class DatasetWork(Protocol):
    """The files of one build, until they are uploaded (then ``remove``)."""

    def sink(self, split: Split) -> LineSink: ...

    def merge(self, source: Split, into: Split) -> int:
        """Append ``source``'s examples to ``into`` and drop ``source``; returns how many moved."""
        ...

    def finish(self) -> dict[Split, SplitFile]:
        """Close every file; the splits that exist, with their hashes and counts."""
        ...

    def remove(self) -> None:
        """Delete the work folder (whatever happened)."""
        ...


class ExampleBuilder(Protocol[R_co]):
    """What turns items into lines (a service object): ``add`` until it returns False, then ``finish``."""

    def add(self, item: Any) -> bool: ...

    def finish(self) -> R_co: ...


class DatasetWriter(Protocol):
    def open(self, name: str) -> DatasetWork:
        """A fresh work folder for a build of dataset ``name`` (``InvalidInput`` if it cannot be made)."""
        ...

    def build(
        self,
        items: Iterable[T],
        make_builder: Callable[[], ExampleBuilder[R]],
        *,
        expected: int,
        limited: bool,
    ) -> R:
        """Feed ``items`` to one builder and return its ``finish()``; the output is the same whether the
        writer runs the builder here or in a helper process (chosen from ``expected`` items; never for a
        ``limited`` build, which stops early). The builder's ``InvalidInput`` propagates as it is."""
        ...
