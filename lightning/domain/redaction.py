"""Redaction of secrets and personal data, and truncation of over-long values.

Used before anything leaves an agent process (capture) and before anything is
written into a dataset (``lightning.services.datasets``). Patterns favour recall:
a false positive costs a word, a miss leaks a credential into a model's weights.

Speed matters (the dataset builder redacts every message of every example), so
``may_contain_sensitive`` is a cheap pre-check — plain substring tests for the
literal markers every pattern needs (``@``, ``sk-``, ``token``, ``AKIA`` …) and
one regex for long digit runs — and the patterns run only when it says yes. Every
pattern below must keep a trigger there; ``tests/unit/datasets/test_redaction.py``
runs a corpus of planted secrets through both paths.

Values that repeat (tool results name the same months, regions and fields in every
episode) go through a ``Redactor``: the same redaction with a bounded memory of the short
strings that held nothing sensitive and of its verdict on each field name. ``redact_value``
is a Redactor with no memory, so there is one implementation; the memory belongs to whoever
holds the Redactor (capture keeps one per writer).

Kinds reported to ``found`` (the dataset manifest counts them): private_key, jwt,
bearer, basic_auth, url_credentials, openai_key, stripe_key, github_token, aws_key,
slack_token, google_key, azure_client_secret, npm_token, connection_string_secret,
assigned_secret, secret_field, email, iban, ssn, phone, card_number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

REDACTED = "[REDACTED]"

Found = Callable[[str], None]

_SECRET_NAME = (
    r"(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?key|access[_-]?token|"
    r"auth[_-]?token|refresh[_-]?token|id[_-]?token|token|password|passwd|pwd|passphrase|"
    r"credentials?|private[_-]?key)"
)

# (kind, pattern, replacement). Replacements keep the label of "key=value" secrets so the text still reads.
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
        REDACTED,
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), REDACTED),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}"), rf"\1 {REDACTED}"),
    ("basic_auth", re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/]{16,}={0,2}"), rf"\1 {REDACTED}"),
    (
        "url_credentials",
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,15}://)[^\s/:@\"']+:[^\s/@\"']+@"),
        rf"\1{REDACTED}@",
    ),
    ("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"), REDACTED),
    ("stripe_key", re.compile(r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"), REDACTED),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), REDACTED),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    ("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    ("azure_client_secret", re.compile(r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"), REDACTED),
    ("npm_token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), REDACTED),
    (
        "connection_string_secret",
        re.compile(
            r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|AccessKey|sig)=[^;\s\"'&]{6,}"
        ),
        rf"\1={REDACTED}",
    ),
    (
        "assigned_secret",
        # password=..., "api_key": "...", aws_secret_access_key: ..., Authorization: ...
        re.compile(
            rf"(?i)(\b[A-Za-z0-9_.-]*{_SECRET_NAME}[A-Za-z0-9_.-]*|\bauthorization)"
            r"(\"?\s*[:=]\s*\"?|\s+is\s+)['\"]?(?!\[REDACTED\])[^\s\"',;}}{{]{6,}"
        ),
        rf"\1\2{REDACTED}",
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), REDACTED),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"), REDACTED),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), REDACTED),
    (
        "phone",
        re.compile(
            r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"
            r"|(?<![\w.])\+\d{1,3}(?:[\s.-]?\d{2,4}){3,5}\b"
        ),
        REDACTED,
    ),
)

_CARD = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?![\d.])")

# Literal markers, lower case: if none occurs (and no long digit run), no pattern can match.
_TRIGGERS = (
    "@",
    "-----begin",
    "eyj",
    "bearer",
    "basic ",
    "://",
    "sk-",
    "k_live_",
    "k_test_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "akia",
    "asia",
    "xox",
    "aiza",
    "q~",
    "npm_",
    "key",
    "sig=",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "authorization",
)
# ssn / phone / card / iban all hold a run of >= 9 digits and separators (IBANs: 10+ digit BBAN tails),
# so a text with fewer than 9 digits in total cannot hold one (counting digits is far cheaper than a regex).
_DIGIT_RUN = re.compile(r"\d[\d\s\-().]{7,}\d")
_MIN_DIGITS = 9
_DIGITS = "0123456789"

_SECRET_FIELD = re.compile(
    r"(?i)^(?:[a-z0-9]+[_.-])*(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|token|"
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|api[_-]?key|apikey|access[_-]?key|"
    r"secret[_-]?key|private[_-]?key|account[_-]?key|credentials?|authorization|connection[_-]?string|"
    r"ssn|card[_-]?number|iban)$"
)


def may_contain_sensitive(text: str) -> bool:
    """Cheap pre-check: False means no redaction pattern can match ``text``."""
    low = text.lower()
    for marker in _TRIGGERS:
        if marker in low:
            return True
    if sum(map(text.count, _DIGITS)) < _MIN_DIGITS:
        return False
    return _DIGIT_RUN.search(text) is not None


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


def redact_text(text: str, found: Found | None = None) -> str:
    """``text`` with secrets and personal data replaced by ``[REDACTED]``."""
    if not text or not may_contain_sensitive(text):
        return text
    return _apply_patterns(text, found)


def _apply_patterns(text: str, found: Found | None) -> str:
    for kind, pattern, replacement in _PATTERNS:
        text, count = pattern.subn(replacement, text)
        if count and found is not None:
            for _ in range(count):
                found(kind)
    cards = 0

    def _card(match: re.Match[str]) -> str:
        nonlocal cards
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            cards += 1
            return REDACTED
        return match.group(0)

    text = _CARD.sub(_card, text)
    if cards and found is not None:
        for _ in range(cards):
            found("card_number")
    return text


def is_secret_field(name: str) -> bool:
    """True for keys whose value is a secret whatever it looks like (``password``, ``api_key`` …)."""
    return bool(_SECRET_FIELD.match(name))


def redact_value(value: Any, found: Found | None = None) -> Any:
    """Redact every string inside a JSON-like value; values under secret-named keys are redacted whole.

    Dict keys are kept (they name fields, not data). Containers come back as new dicts and lists.
    """
    return _NO_MEMORY.redact_value(value, found)


# Tool results repeat the same short strings (months, product names, regions) in every episode:
# a string this short is remembered once it is known to hold nothing sensitive.
_SHORT: Final = 64
MEMORY: Final = 50_000  # entries per memory of a Redactor; a full memory is emptied, never grown


class _FieldMemory(dict[str, bool]):
    """Field name → whether it names a secret; a miss asks ``is_secret_field`` and remembers the answer."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, name: str) -> bool:
        secret = is_secret_field(name)
        if len(self) >= self.limit:
            self.clear()
        self[name] = secret
        return secret


class _HarmlessMemory(dict[str, bool]):
    """Short strings known to hold nothing sensitive (→ False); a miss runs ``may_contain_sensitive``.

    A string that may be sensitive is never remembered: a secret must not outlive its request here.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, text: str) -> bool:
        if may_contain_sensitive(text):
            return True
        if len(text) <= _SHORT:
            if len(self) >= self.limit:
                self.clear()
            self[text] = False
        return False


class Redactor:
    """The redaction of this module, with a bounded memory for values it sees again and again.

    ``Redactor(memory=0)`` remembers nothing (that is ``redact_value``); ``Redactor()`` remembers up
    to ``MEMORY`` harmless short strings and field names, so checking them again is one dict lookup.
    Results never depend on the memory. Safe to share between threads: a lookup or an insert is
    atomic, and a full memory is simply emptied.
    """

    __slots__ = ("is_secret_field", "may_contain_sensitive")

    may_contain_sensitive: Callable[[str], bool]
    """Like the module's ``may_contain_sensitive`` (False: no pattern can match)."""
    is_secret_field: Callable[[str], bool]
    """Like the module's ``is_secret_field``."""

    def __init__(self, *, memory: int = MEMORY) -> None:
        if memory > 0:
            # A dict's own lookup, bound once: a hit costs no Python-level call.
            self.may_contain_sensitive = _HarmlessMemory(memory).__getitem__
            self.is_secret_field = _FieldMemory(memory).__getitem__
        else:
            self.may_contain_sensitive = may_contain_sensitive
            self.is_secret_field = is_secret_field

    def redact_text(self, text: str, found: Found | None = None) -> str:
        """Like the module's ``redact_text``."""
        if not text or not self.may_contain_sensitive(text):
            return text
        return _apply_patterns(text, found)

    def redact_value(self, value: Any, found: Found | None = None) -> Any:
        """Like the module's ``redact_value`` (this is its implementation)."""
        kind = type(value)
        if kind is str:
            return _apply_patterns(value, found) if value and self.may_contain_sensitive(value) else value
        if kind is dict or isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                secret = isinstance(item, str | int) and not isinstance(item, bool) and item != ""
                if secret and isinstance(key, str) and self.is_secret_field(key):
                    out[key] = REDACTED
                    if found is not None:
                        found("secret_field")
                    continue
                out[key] = self.redact_value(item, found)
            return out
        if kind is list or kind is tuple or isinstance(value, list | tuple):
            return [self.redact_value(item, found) for item in value]
        if isinstance(value, str):  # a str subclass
            return self.redact_text(value, found)
        return value


_NO_MEMORY: Final = Redactor(memory=0)


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars`` with a visible marker saying how much was dropped."""
    if len(text) <= max_chars:
        return text
    dropped = len(text) - max_chars
    return f"{text[:max_chars]}… [truncated {dropped} chars]"
