"""Fixtures for the Functions handler tests: the app's Container on a fresh local SQLite home."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lightning.bootstrap import Container
from lightning.config import get_settings
from tests.integration.functions.harness import run_on


@pytest.fixture
def app_container(monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """What the Function App builds from its settings, here on SQLite under the test's LIGHTNING_HOME."""
    monkeypatch.setenv("LIGHTNING_EVALUATOR", "rubric")
    monkeypatch.setenv("DATASET_MIN_EPISODES", "10")
    monkeypatch.setenv("DATASET_MIN_HOURS_BETWEEN", "0")
    with run_on(Container(get_settings())) as container:
        yield container
