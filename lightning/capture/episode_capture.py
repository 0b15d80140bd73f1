"""``EpisodeCapture``: capture switched on (a running ``EpisodeWriter``) or off (every call a no-op).

The object an agent holds (``lightning.bootstrap_agent.episode_capture`` builds it from settings); see the
package docstring for how it is used.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from lightning.capture.policy import CapturePolicy
from lightning.capture.tool_call import ToolCall
from lightning.capture.writer import CaptureStats, EpisodeSink, EpisodeWriter
from lightning.domain.episode import Episode

__all__ = ["EpisodeCapture"]

logger = logging.getLogger(__name__)


class _LazyStore:
    """Builds the configured EpisodeStore on the writer thread at first use; a failure there spools."""

    def __init__(self, factory: Callable[[], EpisodeSink]) -> None:
        self._factory = factory
        self._store: EpisodeSink | None = None

    def add(self, episodes: Sequence[Episode]) -> int:
        if self._store is None:
            self._store = self._factory()
        return self._store.add(episodes)


class EpisodeCapture:
    """Capture switched on (a running writer) or off (every call is a no-op)."""

    def __init__(self, writer: EpisodeWriter | None) -> None:
        self._writer = writer
        self._atexit = False

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def disabled(cls) -> EpisodeCapture:
        return cls(None)

    @classmethod
    def start(
        cls,
        store: EpisodeSink | Callable[[], EpisodeSink],
        *,
        spool_dir: Path,
        policy: CapturePolicy | None = None,
        close_at_exit: bool = True,
    ) -> EpisodeCapture:
        """Capture into ``store`` (or a factory called on the writer thread at first write)."""
        # A store has ``add``; anything else callable is a factory, called on the writer thread.
        sink = cast(EpisodeSink, store) if hasattr(store, "add") else _LazyStore(store)
        writer = EpisodeWriter(sink, spool_dir=spool_dir, policy=policy).start()
        capture = cls(writer)
        if close_at_exit:
            atexit.register(capture.close)
            capture._atexit = True
        return capture

    # --- use ---------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def record(self, episode: Episode) -> None:
        """Hand one episode to the writer (no-op when capture is off). Never raises for the store."""
        if self._writer is None:
            return
        try:
            self._writer.record(episode)
        except Exception:  # capture must never break the agent it observes
            logger.exception("episode capture: could not record episode %s", episode.id)

    @contextmanager
    def tool_call(
        self,
        *,
        agent_id: str,
        query: str,
        context: dict[str, Any] | None = None,
        model_version: str | None = None,
        episode_id: str | None = None,
    ) -> Iterator[ToolCall]:
        """Time one tool call and record it as an episode; an exception is recorded as ``error`` and re-raised."""
        call = ToolCall(
            agent_id=agent_id,
            query=query,
            context=context,
            model_version=model_version,
            episode_id=episode_id,
        )
        try:
            yield call
        except Exception as exc:
            if call.error is None:
                call.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if self._writer is not None:
                self.record(call.episode())

    def flush(self, timeout: float | None = 10.0) -> bool:
        return True if self._writer is None else self._writer.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._writer is not None:
            self._writer.close(timeout)
        if self._atexit:
            atexit.unregister(self.close)
            self._atexit = False

    def stats(self) -> CaptureStats | None:
        return None if self._writer is None else self._writer.stats()

    @property
    def writer(self) -> EpisodeWriter | None:
        return self._writer

    def __enter__(self) -> EpisodeCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
