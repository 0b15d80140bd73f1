"""Redaction of secrets and personal data, and truncation of over-long values.

Used before anything leaves an agent process (capture) and before anything is
written into a dataset. Patterns favour recall: a false positive costs a word,
a miss leaks a credential into a model's weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private_key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    (
        "connection_string_secret",
        re.compile(r"(?i)\b(AccountKey|SharedAccessKey|Password|Pwd|AccessKey|sig)=[^;\s\"']{6,}"),
    ),
    (
        "assigned_secret",
        re.compile(
            r"(?i)\b(api[_-]?key|secret|client[_-]?secret|access[_-]?token|auth[_-]?token|password|passwd|token)"
            r"(\s*[:=]\s*)[\"']?[^\s\"',;]{6,}"
        ),
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,3})?\b")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("phone", re.compile(r"(?<![\w.])\+?\d{1,3}[\s.-]?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")),
)

_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_ASSIGNED = "assigned_secret"
_CHEAP_CHECK = re.compile(r"[@=:\-]|\d{4}|sk-|gh|AKIA|ASIA|xox|AIza|eyJ|(?i:bearer)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def redact_text(text: str, found: Callable[[str], None] | None = None) -> str:
    """``text`` with secrets and personal data replaced by ``[REDACTED]``."""
    if not text or not _CHEAP_CHECK.search(text):
        return text
    for kind, pattern in _PATTERNS:
        if kind == _ASSIGNED:
            replaced, count = pattern.subn(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            replaced, count = pattern.subn(REDACTED, text)
        if count and found is not None:
            for _ in range(count):
                found(kind)
        text = replaced
    replaced = _CARD.sub(_card, text)
    if replaced != text and found is not None:
        found("card_number")
    return replaced


def redact_value(value: Any, found: Callable[[str], None] | None = None) -> Any:
    """Redact every string inside a JSON-like value (dict keys are kept)."""
    if isinstance(value, str):
        return redact_text(value, found)
    if isinstance(value, dict):
        return {key: redact_value(item, found) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, found) for item in value]
    return value


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars`` with a visible marker saying how much was dropped."""
    if len(text) <= max_chars:
        return text
    dropped = len(text) - max_chars
    return f"{text[:max_chars]}… [truncated {dropped} chars]"
