"""Fixtures for the shared API suite: a store with reviewed-looking traffic, served by each host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.services.labeling import LabelBatchRequest, LabelingPolicy, label_batch
from tests.integration.api.data import AGENT, traffic
from tests.integration.api.hosts import ConsoleHost, FunctionsHost, Host
from tests.integration.functions.harness import run_on


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    monkeypatch.setenv("LIGHTNING_EVALUATOR", "rubric")
    c = Container(get_settings())
    c.episodes.add(traffic())
    label_batch(LabelBatchRequest(agent_id=AGENT), c.labeling_ports("rubric"), LabelingPolicy(min_score=0.7))
    with run_on(c):
        yield c


@pytest.fixture(params=["functions", "console"])
def host(request: pytest.FixtureRequest, container: Container) -> Iterator[Host]:
    if request.param == "functions":
        yield FunctionsHost(container)
        return
    served = ConsoleHost(container)
    try:
        yield served
    finally:
        served.close()
