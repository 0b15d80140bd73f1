"""Episode capture for any agent (``ENABLE_EPISODE_CAPTURE=true``): batched, redacted, spooled on outage.

The public API an agent uses::

    from lightning.capture import EpisodeCapture

    capture = EpisodeCapture.from_settings(settings)        # disabled unless ENABLE_EPISODE_CAPTURE=true
    with capture.tool_call(agent_id="autonomous-agent", query=query, model_version=model) as call:
        call.action("analyze_churn", {"period": "Q4 2025"})
        call.result = run_the_tool(...)                      # an exception here is captured as ``error``
        call.response = "Churn for Q4 2025: 4.9% ..."
    ...
    capture.close()                                          # also runs at interpreter exit

Each ``tool_call`` becomes one episode in the workshop's shape (``id, agent_id,
timestamp, state{query, context}, action{tool, arguments}, result, reward,
labeled`` + ``model_version, latency_ms, error, response``). Episodes are
redacted and truncated on the caller's thread, then written in batches by a
background thread (``lightning.services.capture.EpisodeWriter``): the request
path never waits on the store, a store outage spools to
``$LIGHTNING_HOME/spool/`` and is replayed later, and stable ids make replays
duplicate-free. Nothing happens at import.
"""

from __future__ import annotations

import atexit
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lightning.domain.episode import Action, Episode, State, utcnow
from lightning.services.capture import (
    CapturePolicy,
    CaptureStats,
    EpisodeSink,
    EpisodeWriter,
    prepare_episode,
)

if TYPE_CHECKING:
    from lightning.config import Settings

__all__ = [
    "CapturePolicy",
    "CaptureStats",
    "EpisodeCapture",
    "EpisodeSink",
    "ToolCall",
    "new_episode_id",
    "policy_from_settings",
    "prepare_episode",
]

logger = logging.getLogger(__name__)


def new_episode_id() -> str:
    """A fresh, stable episode id (fixed at capture time; replays never change it)."""
    return f"episode-{uuid.uuid4().hex}"


def policy_from_settings(settings: Settings) -> CapturePolicy:
    return CapturePolicy(
        batch_size=settings.capture_batch_size,
        flush_seconds=settings.capture_flush_seconds,
        max_result_chars=settings.capture_max_result_chars,
        max_text_chars=settings.capture_max_result_chars,
    )


class _LazyStore:
    """Builds the configured EpisodeStore on the writer thread at first use; a failure there spools."""

    def __init__(self, factory: Callable[[], EpisodeSink]) -> None:
        self._factory = factory
        self._store: EpisodeSink | None = None

    def add(self, episodes: Sequence[Episode]) -> int:
        if self._store is None:
            self._store = self._factory()
        return self._store.add(episodes)


class ToolCall:
    """One tool call being captured; fill in what the agent did, the context manager records it."""

    def __init__(
        self,
        *,
        agent_id: str,
        query: str,
        context: dict[str, Any] | None = None,
        model_version: str | None = None,
        episode_id: str | None = None,
    ) -> None:
        self.id = episode_id or new_episode_id()
        self.agent_id = agent_id
        self.query = query
        self.context = dict(context or {})
        self.model_version = model_version
        self.tool: str | None = None
        self.arguments: dict[str, Any] = {}
        self.result: Any = None
        self.response: str | None = None
        self.error: str | None = None
        self.timestamp = utcnow()
        self._started = time.perf_counter()
        self.latency_ms: float | None = None

    def action(self, tool: str | None, arguments: dict[str, Any] | None = None) -> None:
        self.tool = tool
        self.arguments = dict(arguments or {})

    def finish(self) -> None:
        if self.latency_ms is None:
            self.latency_ms = round((time.perf_counter() - self._started) * 1000.0, 3)

    def episode(self) -> Episode:
        self.finish()
        return Episode(
            id=self.id,
            agent_id=self.agent_id,
            timestamp=self.timestamp,
            state=State(query=self.query, context=self.context),
            action=Action(tool=self.tool, arguments=self.arguments),
            result=self.result,
            response=self.response,
            model_version=self.model_version,
            latency_ms=self.latency_ms,
            error=self.error,
        )


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

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: EpisodeSink | None = None,
        enabled: bool | None = None,
        close_at_exit: bool = True,
    ) -> EpisodeCapture:
        """On when ``ENABLE_EPISODE_CAPTURE`` (or ``enabled``) says so, into the configured episode store."""
        if not (settings.enable_episode_capture if enabled is None else enabled):
            return cls.disabled()
        if store is None:

            def factory() -> EpisodeSink:
                from lightning.bootstrap import Container

                return Container(settings).episodes

            return cls.start(
                factory,
                spool_dir=settings.spool_dir,
                policy=policy_from_settings(settings),
                close_at_exit=close_at_exit,
            )
        return cls.start(
            store,
            spool_dir=settings.spool_dir,
            policy=policy_from_settings(settings),
            close_at_exit=close_at_exit,
        )

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
