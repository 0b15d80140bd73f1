"""In-memory DatasetStore and BlobStore fakes, for unit tests of every area.

Same semantics as the SQLite store and the local / Azure blob stores (the contract
suites run them all): a name maps to one content hash, same content re-put returns
the stored manifest, other content is a ``Conflict`` unless ``overwrite``; blobs
are ``mem://`` URIs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import Episode, Label
from lightning.domain.errors import Conflict, InvalidInput, NotFound


class InMemoryDatasetStore:
    def __init__(self) -> None:
        self._items: dict[str, tuple[DatasetManifest, int]] = {}
        self._lock = threading.Lock()

    def find(self, name: str) -> DatasetManifest | None:
        with self._lock:
            item = self._items.get(name)
        if item is None:
            return None
        manifest = item[0].model_copy(deep=True)
        manifest.etag = str(item[1])
        return manifest

    def get(self, name: str) -> DatasetManifest:
        found = self.find(name)
        if found is None:
            raise NotFound("dataset", name, hint="list them with `lightning-loop list-datasets`")
        return found

    def put(self, manifest: DatasetManifest, *, overwrite: bool = False) -> DatasetManifest:
        with self._lock:
            current = self._items.get(manifest.name)
            if current is None or (current[0].content_sha256 != manifest.content_sha256 and overwrite):
                version = 1 if current is None else current[1] + 1
                self._items[manifest.name] = (manifest.model_copy(deep=True), version)
            elif current[0].content_sha256 != manifest.content_sha256:
                raise Conflict(
                    f"dataset {manifest.name!r} already exists with different content; "
                    "choose another name or pass --overwrite",
                    ident=manifest.name,
                )
        return self.get(manifest.name)

    def list(self, *, agent_id: str | None = None) -> list[DatasetManifest]:
        with self._lock:
            names = [n for n, (m, _) in self._items.items() if agent_id is None or m.agent_id == agent_id]
        found = [self.get(name) for name in names]
        return sorted(found, key=lambda m: (m.created_at, m.name), reverse=True)

    def latest(self, agent_id: str) -> DatasetManifest | None:
        found = self.list(agent_id=agent_id)
        return found[0] if found else None


class InMemoryBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def _key(self, uri: str) -> str:
        if not uri.startswith("mem://"):
            raise InvalidInput(f"{uri!r} is not a mem:// URI")
        return uri.removeprefix("mem://")

    @staticmethod
    def _check(blob_name: str) -> str:
        if not blob_name or blob_name.startswith("/") or ".." in blob_name.split("/"):
            raise InvalidInput(f"blob name {blob_name!r} must be a relative path without '..'")
        return blob_name

    def upload_file(self, path: Path, blob_name: str) -> str:
        self.blobs[self._check(blob_name)] = Path(path).read_bytes()
        return f"mem://{blob_name}"

    def download_file(self, uri: str, path: Path) -> Path:
        key = self._key(uri)
        if key not in self.blobs:
            raise NotFound("blob", uri)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(self.blobs[key])
        return Path(path)

    def open_lines(self, uri: str) -> Iterator[bytes]:
        key = self._key(uri)
        if key not in self.blobs:
            raise NotFound("blob", uri)
        return iter(self.blobs[key].splitlines(keepends=True))

    def exists(self, uri: str) -> bool:
        return self._key(uri) in self.blobs

    def delete(self, uri: str) -> None:
        self.blobs.pop(self._key(uri), None)


# --- episode builders for dataset tests ---------------------------------------------------------

_TOOLS = {
    "analyze_churn": ("Analyze customer churn for {p}", {"period": "{p}"}),
    "sales_report": ("Generate a sales report for the {r} region in {p}", {"region": "{r}", "period": "{p}"}),
    "top_products": ("What are the top {n} products by revenue?", {"n": "{n}", "metric": "revenue"}),
    "customer_segments": ("Show me customer segments at {k} risk", {"risk_level": "{k}"}),
    "sales_forecast": ("Predict sales for the next {n} months", {"horizon_months": "{n}"}),
}
_REGIONS = ("north", "south", "east", "west")
_RISKS = ("low", "medium", "high")


def labeled_episode(
    index: int,
    *,
    agent_id: str = "autonomous-agent",
    reward: float | None = 0.9,
    tool: str | None = None,
    query: str | None = None,
    response: str | None = "Here is what I found.",
    result: object = None,
    error: str | None = None,
    timestamp: datetime | None = None,
    arguments: dict[str, object] | None = None,
) -> Episode:
    """A distinct, realistic episode number ``index`` (labeled with ``reward`` unless None)."""
    names = list(_TOOLS)
    chosen = tool or names[index % len(names)]
    template, args = _TOOLS.get(chosen, ("Do something {n}", {}))
    values = {
        "p": f"Q{index % 4 + 1} {2000 + index // 4}",
        "r": _REGIONS[index % 4],
        "n": index % 50 + 1,
        "k": _RISKS[index % 3],
    }
    call_args: dict[str, object] = {}
    for key, value in args.items():
        filled = value.format(**values)
        call_args[key] = int(filled) if key in {"n", "horizon_months"} else filled
    if chosen in {"top_products", "sales_forecast", "customer_segments"}:
        template += f" (request {index})"
    episode = Episode.model_validate(
        {
            "id": f"ep-{index:07d}",
            "agent_id": agent_id,
            "timestamp": timestamp or datetime(2026, 2, 7, 10, 0, tzinfo=UTC) + timedelta(seconds=index),
            "state": {
                "query": query or template.format(**values),
                "context": {"user": "analyst@contoso.com"},
            },
            "action": {
                "tool": chosen if tool != "" else None,
                "arguments": arguments if arguments is not None else call_args,
            },
            "result": result if result is not None else {"ok": True, "rows": index % 7},
            "response": response,
            "error": error,
        }
    )
    if reward is None:
        return episode
    return episode.with_label(Label(source="auto", score=reward, reason="test", evaluator="rubric"))
