"""Episodes in and out: JSONL import (validated line by line) and streaming export, plus listing.

Called by the CLI (``import-episodes``, ``export-episodes``, ``list-episodes``) and the demo.
Import rules: every line is validated as an Episode (the workshop shape); blank lines
are ignored; valid lines are imported and each rejected line is reported with its number
and reason — or, with ``strict``, nothing is imported when any line is rejected. Ids are
stable, so importing the same file twice creates no duplicates (the store inserts only new
ids). Export writes one ``Episode.to_document()`` JSON object per line, streaming.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightning.domain.episode import Episode
from lightning.domain.errors import InvalidInput
from lightning.faultpoints import fault_point
from lightning.ports.episodes import EpisodeQuery, EpisodeStore

Progress = Callable[[int], None]


class RejectedLine(BaseModel):
    """A line of an import file that is not a valid episode."""

    model_config = ConfigDict(frozen=True)

    line: int = Field(description="1-based line number in the file.")
    reason: str


class ImportReport(BaseModel):
    """What an import did."""

    lines: int = Field(default=0, description="Non-blank lines read.")
    valid: int = 0
    imported: int = Field(default=0, description="Episodes new to the store.")
    already_present: int = Field(default=0, description="Valid episodes whose id the store already had.")
    rejected: list[RejectedLine] = Field(default_factory=list)
    strict: bool = False

    @property
    def aborted(self) -> bool:
        """Strict mode refused the whole file."""
        return self.strict and bool(self.rejected)


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "episode"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_line(text: str) -> Episode:
    """One JSONL line → Episode, or ``InvalidInput`` saying what is wrong with it.

    A valid line is parsed and validated in one pass (pydantic's JSON parser); only a line that fails
    goes the slow way (``json.loads``, then validation) so that the reason names what is wrong.
    """
    try:
        episode = Episode.model_validate_json(text)
    except ValidationError:
        return _parse_slowly(text)
    if episode.etag is not None:
        episode.etag = None  # a store token from elsewhere means nothing here
    return episode


def _parse_slowly(text: str) -> Episode:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a JSON object, got {type(data).__name__}")
    data.pop("etag", None)  # a store token from elsewhere means nothing here
    try:
        return Episode.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_validation_reason(exc)) from None


def _parsed(lines: Iterable[str]) -> Iterator[tuple[int, Episode | RejectedLine]]:
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            yield number, parse_line(text)
        except InvalidInput as exc:
            yield number, RejectedLine(line=number, reason=str(exc))


def import_episodes(
    read_lines: Callable[[], Iterable[str]],
    *,
    store: EpisodeStore,
    strict: bool = False,
    batch_size: int = 500,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import a JSONL stream; ``read_lines`` opens it (called twice in strict mode: check, then import).

    Returns the report; never raises for bad lines (they are in ``report.rejected``).
    """
    report = ImportReport(strict=strict)
    if strict:
        lines = 0
        for _number, item in _parsed(read_lines()):
            lines += 1
            if isinstance(item, RejectedLine):
                report.rejected.append(item)
        if report.rejected:
            report.lines, report.valid = lines, lines - len(report.rejected)
            return report
    # Plain counters on the per-line path; the report (a pydantic model) is filled once at the end.
    lines = valid = imported = 0
    rejected = report.rejected
    batch: list[Episode] = []

    def flush() -> int:
        added = store.add(batch)
        fault_point("import.after_batch")
        if on_progress is not None:
            on_progress(len(batch))
        batch.clear()
        return added

    for _number, item in _parsed(read_lines()):
        lines += 1
        if isinstance(item, RejectedLine):
            if not strict:
                rejected.append(item)
            continue
        valid += 1
        batch.append(item)
        if len(batch) >= batch_size:
            imported += flush()
    if batch:
        imported += flush()
    report.lines, report.valid, report.imported = lines, valid, imported
    report.already_present = valid - imported
    return report


def episode_query(
    *,
    agent_id: str | None = None,
    unlabeled_only: bool = False,
    labeled_only: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    model_version: str | None = None,
    min_reward: float | None = None,
) -> EpisodeQuery:
    """The query behind ``list-episodes``/``export-episodes`` flags, with their rules checked."""
    if unlabeled_only and labeled_only:
        raise InvalidInput("--unlabeled-only and --labeled-only exclude each other; pass at most one")
    if since is not None and until is not None and since >= until:
        raise InvalidInput("--since must be before --until")
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}", field="limit")
    labeled = True if labeled_only else False if unlabeled_only else None
    return EpisodeQuery(
        agent_id=agent_id,
        labeled=labeled,
        since=since,
        until=until,
        limit=limit,
        model_version=model_version,
        min_reward=min_reward,
    )


def list_episodes(store: EpisodeStore, query: EpisodeQuery) -> list[Episode]:
    """Newest first, at most ``query.limit``."""
    return list(store.query(query))


def export_episodes(store: EpisodeStore, query: EpisodeQuery, *, write: Callable[[str], object]) -> int:
    """Write matching episodes as JSONL through ``write`` (oldest first); returns how many."""
    count = 0
    for episode in store.query(query.model_copy(update={"order": "oldest"})):
        write(json.dumps(episode.to_document(), ensure_ascii=False) + "\n")
        count += 1
    return count
