"""What may leave the agent's process: the capture use case redacts with the domain's one redaction,
and truncates; the redactor's memory never changes a result and never holds a secret."""

from __future__ import annotations

import json

import pytest

from lightning.domain.episode import Action, Episode, State
from lightning.domain.redaction import Redactor, may_contain_sensitive, redact_text, redact_value
from lightning.services.capture import prepare_episode, shrink_result
from tests.unit.capture.support import episode
from tests.unit.datasets.test_redaction import CLEAN, PLANTED


def test_clean_episode_passes_through_untouched() -> None:
    clean = episode(1)
    assert prepare_episode(clean) is clean
    assert prepare_episode(clean, redactor=Redactor()) is clean


def test_secrets_and_pii_are_redacted_everywhere() -> None:
    original = episode(
        1,
        state=State(
            query="churn for bob@example.com with api_key=sk-abcdefghijklmnopqrstuvwx",
            context={"user": "analyst@contoso.com", "password": "hunter2hunter2"},
        ),
        result={"period": "Q4", "contact": "call +1 415 555 0100", "token": "abc"},
        response="sent to alice@example.org",
        error="auth failed with Bearer abcdefghijklmnopqrstuvwxyz123456",
    )
    prepared = prepare_episode(original)
    text = json.dumps(prepared.to_document())
    for leaked in (
        "bob@example.com",
        "sk-abcdef",
        "analyst@contoso.com",
        "hunter2",
        "555 0100",
        "alice@",
        "abcdefghijklmnopqrstuvwxyz123456",
    ):
        assert leaked not in text, leaked
    assert "[REDACTED]" in prepared.state.query
    assert prepared.result["period"] == "Q4"
    assert prepared.id == original.id


def test_large_results_shrink_but_keep_their_keys() -> None:
    result = {"metric": "revenue", "products": [{"rank": i, "name": "x" * 40} for i in range(500)]}
    shrunk = shrink_result(result, 2000)
    assert len(json.dumps(shrunk)) <= 2000
    assert shrunk["metric"] == "revenue"
    assert shrunk["products"]
    assert shrunk["_truncated"] == {"products": 500}
    assert len(json.dumps(shrink_result("y" * 10_000, 500))) < 600
    prepared = prepare_episode(episode(1, result=result, response="z" * 20_000), max_result_chars=3000)
    assert len(json.dumps(prepared.result)) <= 3000
    assert len(prepared.response or "") < 8100


def test_extra_state_fields_and_secret_named_keys_are_redacted_too() -> None:
    original = episode(1, state=State(query="q", note="mail bob@example.com", context={"session": "s"}))
    original = original.model_copy(
        update={"action": Action(tool="t", arguments={"api_key": "plainvalue123"})}
    )
    prepared = prepare_episode(original)
    assert prepared.to_document()["state"]["note"] == "mail [REDACTED]"
    assert prepared.action.arguments == {"api_key": "[REDACTED]"}


VALUES = [
    "plain text, Q4 2025, 2025-10",
    "write to bob@example.com or call +1 415 555 0100",
    {
        "api_key": "abcdef123456",
        "password": 123456,
        "token": "",
        "secret": True,
        "note": "sk-" + "a" * 30,
    },
    {"nested": [{"email": "x@y.io"}, ("tuple", "AKIAABCDEFGHIJKLMNOP")], "n": 3, "none": None},
    ["Mechanical Keyboard", {"client_secret": "s3cr3t-value"}, 4.5, False],
    {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
    "card 4111 1111 1111 1111 and ssn 123-45-6789",
    *CLEAN,
    *(secret for _, secret in PLANTED),
]


def test_the_redactors_memory_never_changes_a_result() -> None:
    redactor = Redactor()
    for value in VALUES:
        expected = redact_value(value)
        assert redactor.redact_value(value) == expected, value
        assert redactor.redact_value(value) == expected, value  # the second time from memory
        if isinstance(value, str):
            assert redactor.redact_text(value) == redact_text(value) == expected


def test_a_secret_is_never_remembered_and_the_memory_is_bounded() -> None:
    redactor = Redactor(memory=3)
    texts = redactor.may_contain_sensitive.__self__  # type: ignore[attr-defined]
    fields = redactor.is_secret_field.__self__  # type: ignore[attr-defined]
    for _, secret in PLANTED:
        assert redactor.may_contain_sensitive(secret)
    assert not texts
    for i in range(10):
        assert not redactor.may_contain_sensitive(f"Q{i} 2025")
        assert not redactor.is_secret_field(f"field_{i}")
    assert 0 < len(texts) <= 3
    assert 0 < len(fields) <= 3


PLACES = ("query", "context", "extra", "arguments", "result", "response", "error")


def _carrying(value: str, place: str) -> Episode:
    """An episode with ``value`` in one of the places capture redacts (a miss anywhere must show)."""
    base = episode(1, response="Churn for Q4 2025 was 5%.")
    if place == "query":
        return base.model_copy(update={"state": State(query=f"about {value}", context={"session": "s1"})})
    if place == "context":
        return base.model_copy(update={"state": State(query="q", context={"session": {"note": value}})})
    if place == "extra":
        return base.model_copy(update={"state": State(query="q", context={}, notes=["n", value])})
    if place == "arguments":
        return base.model_copy(
            update={"action": Action(tool="analyze_churn", arguments={"period": "Q4", "filter": value})}
        )
    if place == "result":
        return base.model_copy(
            update={"result": {"period": "Q4", "rows": [{"name": value, "n": 3}, [value]]}}
        )
    return base.model_copy(update={place: f"{place}: {value}"})


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("value", [*CLEAN, *(secret for _, secret in PLANTED)])
def test_prepare_is_the_domain_redaction_of_every_part(value: str, place: str) -> None:
    original = _carrying(value, place)
    document = original.to_document()
    for redactor in (Redactor(memory=0), Redactor()):
        prepared = prepare_episode(original, redactor=redactor)
        assert prepared.to_document() == {
            **document,
            "state": redact_value(document["state"]),
            "action": {"tool": "analyze_churn", "arguments": redact_value(original.action.arguments)},
            "result": redact_value(original.result),
            "response": redact_text(original.response or ""),
            "error": None if original.error is None else redact_text(original.error),
        }
        if not may_contain_sensitive(value):
            assert prepared is original  # nothing could match: the cheap scan lets it through untouched
