"""Capture's use case: the episode as it may leave the agent's process — redacted and truncated.

Called by the capture writer (``lightning.capture.writer``) on the caller's thread for every
episode it records, so the common case (nothing sensitive, nothing too long) costs one cheap
scan and returns the episode itself. The redaction is the domain's (``lightning.domain.redaction``);
the caller passes the ``Redactor`` whose memory it owns. The machinery around this (the writer
thread, the spool, the public ``EpisodeCapture`` API) lives in ``lightning.capture``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lightning.domain.episode import Episode
from lightning.domain.redaction import Redactor, truncate_text

__all__ = ["prepare_episode", "shrink_result"]

_BIG_INT = 10**20  # ints below this print in at most 21 characters
_NO_MEMORY = Redactor(memory=0)


class _Scan:
    """What one pass over an episode's values found: anything to redact, and a JSON size bound."""

    __slots__ = ("is_secret_field", "may_contain_sensitive", "sensitive", "size")

    def __init__(self, redactor: Redactor) -> None:
        self.sensitive = False
        self.size = 0  # an upper bound of len(json.dumps(value)), so small values skip the dump
        self.may_contain_sensitive = redactor.may_contain_sensitive
        self.is_secret_field = redactor.is_secret_field


def _scan(value: Any, scan: _Scan) -> None:
    """Add ``value`` to ``scan``: flags anything the redactor might change (a superset: a secret-named
    key flags whatever its value), and adds an upper bound of the value's JSON length."""
    kind = type(value)
    maybe = scan.may_contain_sensitive
    if kind is str:
        if not scan.sensitive and maybe(value):
            scan.sensitive = True
        scan.size += 2 * len(value) + 2  # every char escaped at most to two, plus quotes
    elif kind is dict:
        secret_field = scan.is_secret_field
        size = 2
        for key, item in value.items():
            if type(key) is str:
                size += 2 * len(key) + 4
                if secret_field(key):
                    scan.sensitive = True
            else:
                size += len(str(key)) + 4
            # Leaves inline: most nodes are, and a call per leaf is most of the cost.
            item_kind = type(item)
            if item_kind is str:
                size += 2 * len(item) + 2
                if not scan.sensitive and maybe(item):
                    scan.sensitive = True
            elif (
                item_kind is float
                or item_kind is bool
                or item is None
                or (item_kind is int and -_BIG_INT < item < _BIG_INT)
            ):
                size += 25
            else:
                _scan(item, scan)
        scan.size += size
    elif kind is list or kind is tuple:
        scan.size += 2
        for item in value:
            scan.size += 2
            _scan(item, scan)
    elif value is None or kind is bool or kind is float or (kind is int and -_BIG_INT < value < _BIG_INT):
        scan.size += 25
    elif isinstance(value, str | Mapping | list | tuple):  # subclasses: rare, take the general path
        _scan(
            str(value)
            if isinstance(value, str)
            else dict(value)
            if isinstance(value, Mapping)
            else list(value),
            scan,
        )
    else:  # big ints, datetimes, ...: json.dumps(default=str) writes str(value)
        scan.size += 2 * len(str(value)) + 2


def shrink_result(value: Any, max_chars: int) -> Any:
    """``value`` whose JSON fits in ``max_chars``: long lists are halved (``_truncated`` says so),
    long strings cut, and as a last resort the JSON text itself is cut. Top-level keys survive."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= max_chars:
        return value
    if isinstance(value, dict):
        shrunk: dict[str, Any] = dict(value)
        for _ in range(64):
            lists = [(len(v), k) for k, v in shrunk.items() if isinstance(v, list) and len(v) > 1]
            if not lists:
                break
            _, key = max(lists)
            original = value[key] if isinstance(value.get(key), list) else shrunk[key]
            shrunk[key] = shrunk[key][: len(shrunk[key]) // 2]
            shrunk["_truncated"] = {**shrunk.get("_truncated", {}), key: len(original)}
            if len(json.dumps(shrunk, default=str, ensure_ascii=False)) <= max_chars:
                return shrunk
        limit = max(20, max_chars // max(1, 2 * len(shrunk)))
        shrunk = {k: truncate_text(v, limit) if isinstance(v, str) else v for k, v in shrunk.items()}
        if len(json.dumps(shrunk, default=str, ensure_ascii=False)) <= max_chars:
            return shrunk
    return truncate_text(text, max_chars)


def prepare_episode(
    episode: Episode,
    *,
    max_result_chars: int = 8000,
    max_text_chars: int = 8000,
    redactor: Redactor = _NO_MEMORY,
) -> Episode:
    """The episode as it may leave the process: secrets/PII redacted, long values truncated.

    The common case (nothing sensitive, nothing too long) returns ``episode`` itself after one
    cheap scan of its values; only episodes that might hold something pay for the patterns, and
    then only the strings that might. ``redactor`` is the domain's redaction, with the caller's memory.
    """
    scan = _Scan(redactor)
    _scan(episode.result, scan)
    result_size = scan.size
    _scan(episode.state.query, scan)
    _scan(episode.state.context, scan)
    _scan(episode.action.arguments, scan)
    extra = episode.state.__pydantic_extra__ or {}
    if extra:
        _scan(extra, scan)
    if episode.response:
        _scan(episode.response, scan)
    if episode.error:
        _scan(episode.error, scan)
    update: dict[str, Any] = {}
    if scan.sensitive:
        redact = redactor.redact_value
        state = episode.state.model_copy(
            update={
                "query": redact(episode.state.query),
                "context": redact(episode.state.context),
                **{key: redact(item) for key, item in extra.items()},
            }
        )
        update["state"] = state
        update["action"] = episode.action.model_copy(update={"arguments": redact(episode.action.arguments)})
        update["result"] = redact(episode.result)
        if episode.response:
            update["response"] = redact(episode.response)
        if episode.error:
            update["error"] = redact(episode.error)
    result = update.get("result", episode.result)
    if result is not None and result_size > max_result_chars:
        shrunk = shrink_result(result, max_result_chars)
        if shrunk is not result:
            update["result"] = shrunk
    query = update["state"].query if "state" in update else episode.state.query
    if len(query) > max_text_chars:
        base = update.get("state", episode.state)
        update["state"] = base.model_copy(update={"query": truncate_text(query, max_text_chars)})
    for name in ("response", "error"):
        text = update.get(name, getattr(episode, name))
        if text is not None and len(text) > max_text_chars:
            update[name] = truncate_text(text, max_text_chars)
    return episode.model_copy(update=update) if update else episode
