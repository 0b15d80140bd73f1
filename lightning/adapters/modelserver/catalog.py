"""Which models the server can answer with: ``local-base`` and the fine-tuned models on disk.

The workshop's base-model names (``gpt-4o-mini``, ``gpt-4o-mini-2024-07-18``,
``gpt-4.1-mini``) are aliases of ``local-base``: they can be fine-tuned and
chatted with, and ``/v1/models`` lists them with ``served_by: local-base``, so
the workshop's commands run unchanged on this machine.

Fine-tuned artifacts (``TunedModel``, joblib) are loaded on first use and kept
in a small LRU cache; a checkpoint name (``…:ckpt-step-N``) serves the model
with that epoch's tool-selector weights. Used by the app (``/v1/models``,
chat completions) and the job runner (registering new models).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from lightning.adapters.modelserver.store import Store
from lightning.adapters.modelserver.trainer import TunedModel
from lightning.adapters.modelserver.zeroshot import BASE_MODEL, ZeroShotModel

OWNER = "lightning"
BASE_CREATED = 1_767_225_600  # 2026-01-01: a fixed date, so /v1/models is stable across restarts
BASE_ALIASES = ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4.1-mini")
"""Cloud base-model names this machine answers with ``local-base`` (the names the workshop types)."""


def served_by(model_id: str) -> str | None:
    """``local-base`` when ``model_id`` is one of its aliases, else None."""
    return BASE_MODEL if model_id in BASE_ALIASES else None


def alias_notice(model_id: str) -> str | None:
    """The sentence jobs and chat replies carry for an alias ("gpt-4o-mini is served by local-base …")."""
    base = served_by(model_id)
    return None if base is None else f"{model_id} is served by {base} on this machine"


class ModelCatalog:
    def __init__(self, store: Store, *, cache_size: int = 8) -> None:
        self.store = store
        self.base = ZeroShotModel()
        self._cache: OrderedDict[str, TunedModel] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def exists(self, model_id: str) -> bool:
        return self.is_base(model_id) or self.store.get_model(model_id) is not None

    @staticmethod
    def is_base(model_id: str) -> bool:
        """``local-base`` under its own name or one of its aliases."""
        return model_id == BASE_MODEL or model_id in BASE_ALIASES

    def trainable(self, model_id: str) -> bool:
        """Base models a job may start from (continued fine-tuning of ft: models is not supported)."""
        return self.is_base(model_id)

    def describe(self, model_id: str) -> dict[str, Any] | None:
        if model_id == BASE_MODEL:
            return {"id": BASE_MODEL, "object": "model", "created": BASE_CREATED, "owned_by": OWNER}
        if model_id in BASE_ALIASES:
            # ``served_by`` is an extra field next to the API's; the SDK keeps it (``model.served_by``).
            return {
                "id": model_id,
                "object": "model",
                "created": BASE_CREATED,
                "owned_by": OWNER,
                "served_by": BASE_MODEL,
            }
        entry = self.store.get_model(model_id)
        if entry is None:
            return None
        return {"id": model_id, "object": "model", "created": entry["created"], "owned_by": entry["owned_by"]}

    def list(self) -> list[dict[str, Any]]:
        """The base model, its aliases and every fine-tuned model (checkpoints are servable but not listed,
        as upstream)."""
        models = [self.describe(name) for name in (BASE_MODEL, *BASE_ALIASES)]
        models.extend(
            self.describe(name)
            for name, entry in self.store.list_models()
            if entry.get("checkpoint_step") is None
        )
        return [model for model in models if model is not None]

    def tuned(self, model_id: str) -> TunedModel | None:
        """The fine-tuned model for ``model_id`` (None for the base model or an unknown name)."""
        entry = self.store.get_model(model_id)
        if entry is None:
            return None
        artifact = entry["artifact"]
        with self._lock:
            model = self._cache.get(artifact)
            if model is not None:
                self._cache.move_to_end(artifact)
        if model is None:
            import joblib

            model = joblib.load(self.store.models_dir / artifact)
            with self._lock:
                self._cache[artifact] = model
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return model.at_checkpoint(entry.get("checkpoint_step"))

    def register(self, *, job_id: str, model_id: str, checkpoints: dict[str, int], model: TunedModel) -> None:
        """Save ``model`` as the artifact of ``job_id`` and make its names servable."""
        import joblib

        artifact = self.store.artifact_path(job_id)
        tmp = artifact.with_suffix(".tmp")
        joblib.dump(model, tmp, compress=3)
        tmp.replace(artifact)
        now = int(time.time())
        entries = {
            model_id: {"artifact": artifact.name, "job_id": job_id, "created": now, "owned_by": "user"},
        }
        for name, step in checkpoints.items():
            entries[name] = {
                "artifact": artifact.name,
                "job_id": job_id,
                "created": now,
                "owned_by": "user",
                "checkpoint_step": step,
            }
        self.store.add_models(entries)
        with self._lock:
            self._cache[artifact.name] = model

    def forget(self, model_id: str) -> bool:
        entry = self.store.get_model(model_id)
        if entry is None or not self.store.delete_model(model_id):
            return False
        with self._lock:
            self._cache.pop(entry["artifact"], None)
        return True
