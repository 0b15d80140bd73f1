"""Redaction against a corpus of planted secrets and personal data, and against clean analytics text."""

from __future__ import annotations

from collections import Counter

import pytest

from lightning.domain.redaction import (
    REDACTED,
    is_secret_field,
    may_contain_sensitive,
    redact_text,
    redact_value,
    truncate_text,
)

# (kind, secret as planted). Values are fake but shaped like the real thing.
PLANTED: list[tuple[str, str]] = [
    ("email", "jane.doe@contoso.com"),
    ("email", "first.last+tag@sub.example.co.uk"),
    ("openai_key", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("openai_key", "sk-abcdefghijklmnopqrstuvwxyz012345"),
    ("openai_key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstu"),
    ("aws_key", "AKIAIOSFODNN7EXAMPLE"),
    ("slack_token", "xoxb-123456789012-abcdefghijkl"),
    ("google_key", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
    ("stripe_key", "sk_live_abcdefghijklmnop1234"),
    ("npm_token", "npm_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("azure_client_secret", "abc8Q~abcdefghijklmnopqrstuvwxyz0123456"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("bearer", "Bearer abcdefghijklmnop.qrstuvwxyz012345"),
    ("basic_auth", "Basic dXNlcm5hbWU6cGFzc3dvcmQxMjM="),
    ("url_credentials", "postgres://admin:s3cretPass@db.internal:5432/sales"),
    (
        "connection_string_secret",
        "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123def456ghi789==",
    ),
    (
        "connection_string_secret",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=abcdef123456=",
    ),
    ("connection_string_secret", "https://acct.blob.core.windows.net/c/b?sv=2024&sig=AbCdEf123456%3D"),
    ("connection_string_secret", "password=hunter2hunter2"),  # Password= is a connection-string key too
    ("assigned_secret", "api_key: 'a1b2c3d4e5f6g7h8'"),
    ("assigned_secret", 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"'),
    ("assigned_secret", '"client_secret": "s3cr3t-value-123"'),
    ("assigned_secret", "my password is CorrectHorse9"),
    ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"),
    ("card_number", "4111 1111 1111 1111"),
    ("card_number", "5500-0000-0000-0004"),
    ("card_number", "378282246310005"),
    ("ssn", "123-45-6789"),
    ("phone", "+1 (415) 555-0100"),
    ("phone", "415.555.0199"),
    ("phone", "+44 20 7946 0958"),
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "DE89370400440532013000"),
]

# The parts of each planted value that must not survive (the label of key=value secrets may stay).
MUST_VANISH = {
    "password=hunter2hunter2": "hunter2hunter2",
    "api_key: 'a1b2c3d4e5f6g7h8'": "a1b2c3d4e5f6g7h8",
    'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"': "wJalrXUtnFEMI",
    '"client_secret": "s3cr3t-value-123"': "s3cr3t-value-123",
    "my password is CorrectHorse9": "CorrectHorse9",
    "Bearer abcdefghijklmnop.qrstuvwxyz012345": "abcdefghijklmnop",
    "Basic dXNlcm5hbWU6cGFzc3dvcmQxMjM=": "dXNlcm5hbWU6",
    "postgres://admin:s3cretPass@db.internal:5432/sales": "s3cretPass",
    "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123def456ghi789==": "abc123def456",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=abcdef123456=": "abcdef123456",
    "https://acct.blob.core.windows.net/c/b?sv=2024&sig=AbCdEf123456%3D": "AbCdEf123456",
}

CLEAN = [
    "Analyze customer churn for Q4 2025",
    "Generate a sales report for the west region",
    "What are the top 10 products by revenue?",
    '{"churn_rate":0.12,"at_risk_customers":450,"period":"Q4 2025"}',
    '{"region":"west","revenue":1250000.5,"orders":3412,"growth":0.034}',
    "Predict next month's sales forecast for 2026-03",
    "Revenue grew 12% to $1,250,000 in Q3 2025 across 3,412 orders.",
    "Order 20251107 shipped on 2025-11-07.",
]


@pytest.mark.parametrize(("kind", "secret"), PLANTED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PLANTED)])
def test_planted_secret_is_redacted_in_context(kind: str, secret: str) -> None:
    text = f"Customer note: {secret} — please follow up."
    assert may_contain_sensitive(text), "the cheap pre-check must never hide a secret"
    found: Counter[str] = Counter()
    redacted = redact_text(text, lambda k: found.update([k]))
    assert MUST_VANISH.get(secret, secret) not in redacted
    assert REDACTED in redacted
    assert redacted.startswith("Customer note: ")
    assert found[kind] >= 1, f"expected kind {kind}, got {dict(found)}"


def test_corpus_recall_is_total() -> None:
    blob = "\n".join(f"line {i}: {secret}" for i, (_, secret) in enumerate(PLANTED))
    redacted = redact_text(blob)
    leaked = [s for _, s in PLANTED if MUST_VANISH.get(s, s) in redacted]
    assert leaked == []


@pytest.mark.parametrize("text", CLEAN)
def test_clean_analytics_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_luhn_invalid_long_numbers_are_kept() -> None:
    assert redact_text("order 4111 1111 1111 1112") == "order 4111 1111 1111 1112"


def test_values_under_secret_named_keys_are_redacted_whole() -> None:
    found: list[str] = []
    value = {
        "user": {"password": "x7", "token": 12345678, "name": "Jane"},
        "tokens": 45,
        "token_count": 99,
        "notes": ["reach me at a@b.io"],
        "flag": True,
    }
    out = redact_value(value, found.append)
    assert out == {
        "user": {"password": REDACTED, "token": REDACTED, "name": "Jane"},
        "tokens": 45,
        "token_count": 99,
        "notes": [f"reach me at {REDACTED}"],
        "flag": True,
    }
    assert found.count("secret_field") == 2


@pytest.mark.parametrize(
    "name", ["password", "api_key", "X-Api-Key", "client_secret", "db.password", "authorization"]
)
def test_secret_field_names(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize(
    "name", ["tokens", "token_count", "max_tokens", "keyword", "period", "secretary_name"]
)
def test_ordinary_field_names(name: str) -> None:
    assert not is_secret_field(name)


def test_truncate_marks_what_was_cut() -> None:
    assert truncate_text("abc", 5) == "abc"
    assert truncate_text("abcdefghij", 4) == "abcd… [truncated 6 chars]"
