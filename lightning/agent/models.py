"""Which model the agent asks: the workshop's env first, then the model registry, then the base model.

Resolution (shared by every host, see the brief "Agent model resolution"):

1. ``USE_TUNED_MODEL=true`` → ``TUNED_MODEL_NAME`` (what the rollout patches into the Deployment);
2. else, when following the registry (the local host: ``serve-agent`` does by default), the active
   version of this agent in the ``ModelRegistry`` (``deployment_name or model_name``), re-read at most
   every ``ttl`` seconds so a promotion is picked up without a restart;
3. else the base model (``BASE_MODEL``: ``local-base`` locally; ``AZURE_OPENAI_DEPLOYMENT`` on Azure).

``lightning.bootstrap_agent.model_selector`` reads those settings and builds the selector.

A registry that does not exist yet or fails is tolerated: the agent keeps its last answer (or the
base model) and logs once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lightning.ports.models import ModelRegistry

logger = logging.getLogger(__name__)

ModelSource = Literal[
    "tuned-env",  # USE_TUNED_MODEL=true + TUNED_MODEL_NAME
    "registry",  # the registry's active version for this agent
    "base",  # nothing tuned: the base model / deployment
]


class ModelSelector:
    """Answers "which model now?" cheaply on every request."""

    def __init__(
        self,
        *,
        agent_id: str,
        base_model: str,
        tuned_model: str | None = None,
        registry: Callable[[], ModelRegistry] | None = None,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent_id = agent_id
        self.base_model = base_model
        self.tuned_model = tuned_model
        self._registry_factory = registry
        self._registry: ModelRegistry | None = None
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._active: str | None = None
        self._warned = False

    @property
    def follows_registry(self) -> bool:
        return self._registry_factory is not None

    def current(self) -> str:
        return self.resolve()[0]

    def resolve(self) -> tuple[str, ModelSource]:
        """The model to call and where that choice came from."""
        if self.tuned_model:
            return self.tuned_model, "tuned-env"
        if self._registry_factory is not None:
            active = self._active_from_registry()
            if active:
                return active, "registry"
        return self.base_model, "base"

    def _active_from_registry(self) -> str | None:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._ttl:
            return self._active
        if not self._lock.acquire(blocking=False):
            return self._active  # another request is refreshing: use the last answer
        try:
            self._checked_at = now
            if self._registry is None:
                assert self._registry_factory is not None
                self._registry = self._registry_factory()
            version = self._registry.active(self.agent_id)
            self._active = (version.deployment_name or version.model_name) if version else None
            self._warned = False
        except Exception as exc:  # no registry yet, a locked file, Cosmos down: keep serving
            if not self._warned:
                logger.warning(
                    "model registry unavailable for %s, keeping %s: %s",
                    self.agent_id,
                    self._active or self.base_model,
                    exc,
                )
                self._warned = True
        finally:
            self._lock.release()
        return self._active
