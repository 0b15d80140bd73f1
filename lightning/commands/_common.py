"""What every CLI command shares: the container, output (tables, JSON, progress), date parsing."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.domain.errors import InvalidInput


def current_user(configured: str | None, *, fallback: str = "unknown") -> str:
    """Who labels, promotes or reviews: ``LIGHTNING_USER`` (or the given name), else the login name, else
    ``fallback`` (some containers have no login name: still record something honest)."""
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return fallback


def container() -> Container:
    """Ports wired from the current environment (built per command, so tests can change env)."""
    return Container(get_settings())


def console() -> Console:
    # Piped output gets a wide table instead of rich's 80-column default, so scripts and logs stay readable.
    width = None if sys.stdout.isatty() else 240
    return Console(file=sys.stdout, soft_wrap=True, highlight=False, width=width)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(_plain(data), indent=2, default=str, ensure_ascii=False) + "\n")


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(value) for value in data]
    return data


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console().print(table)


def print_block(lines: Sequence[tuple[str, Any]]) -> None:
    """The workshop's ``Key: value`` blocks, exactly as printed there."""
    for key, value in lines:
        sys.stdout.write(f"{key}: {value}\n")


def progress() -> Progress:
    """A progress bar on stderr (stdout stays clean for --json)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )


def parse_datetime(value: str | None, *, flag: str) -> datetime | None:
    """ISO 8601 (``2026-02-07T10:30:00Z`` or a date); naive values are UTC."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{flag} must be an ISO 8601 date/time like 2026-02-07T10:30:00Z, got {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
