"""CursorStore: named positions in a change stream (the local loop's change-feed lease)."""

from __future__ import annotations

from typing import Protocol


class CursorStore(Protocol):
    def get(self, name: str) -> int:
        """The saved position, 0 when none was saved."""
        ...

    def set(self, name: str, position: int) -> None: ...
