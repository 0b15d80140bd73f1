"""Too few examples: the one-line error says how many more are needed and the commands that make them."""

from __future__ import annotations

import re

import pytest

from lightning.domain.errors import InvalidInput
from tests.fakes.datasets import labeled_episode
from tests.unit.datasets.conftest import Ports

SIMULATE = re.compile(
    r"`lightning-loop simulate-traffic --agent-url http://127\.0\.0\.1:8080 --generate (\d+)`"
)
LABEL = "`lightning-loop label-batch --agent-id autonomous-agent --auto-label`"


def refusal(ports: Ports) -> str:
    with pytest.raises(InvalidInput) as caught:
        ports.build()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_workshops_five_episodes_ask_for_more_traffic_at_their_own_yield(ports: Ports) -> None:
    # 2 good of 5 labeled (the workshop's queries after label-episode and label-batch): a 40 % yield
    ports.add([labeled_episode(i, reward=r) for i, r in enumerate([0.9, 1.0, 0.6, 0.6, 0.2])])
    message = refusal(ports)

    assert message.startswith("only 2 usable examples for 'autonomous-agent' after hygiene")
    assert "fine-tuning needs at least 10, 8 more (aim for 50)" in message
    found = SIMULATE.search(message)
    assert found is not None, message
    assert int(found.group(1)) == 120  # (50 - 2) / 0.4, rounded up to tens
    assert f"label them with {LABEL} and build again, or lower --min-reward" in message


def test_a_high_yield_asks_for_fewer_requests_and_a_low_one_is_floored(ports: Ports) -> None:
    ports.add([labeled_episode(i, reward=0.9) for i in range(9)])
    found = SIMULATE.search(refusal(ports))
    assert found is not None
    assert int(found.group(1)) == 50  # (50 - 9) / 1.0 → 41 → 50

    ports.add([labeled_episode(i, reward=0.1) for i in range(100, 200)])
    found = SIMULATE.search(refusal(ports))
    assert found is not None
    assert int(found.group(1)) == 170  # 9 of 109 is under the 25 % floor: (50 - 9) / 0.25 → 164 → 170


def test_no_episodes_at_all_asks_for_traffic(ports: Ports) -> None:
    message = refusal(ports)
    assert "(0 episodes, 0 labeled; fine-tuning needs at least 10)" in message
    found = SIMULATE.search(message)
    assert found is not None, message
    assert int(found.group(1)) == 100  # 50 at an assumed 50 % yield
    assert LABEL in message


def test_unlabeled_episodes_ask_for_labeling_first(ports: Ports) -> None:
    ports.add([labeled_episode(i, reward=None) for i in range(5)])
    message = refusal(ports)
    assert "(5 episodes, 0 labeled; fine-tuning needs at least 10)" in message
    assert message.endswith(f"label them first with {LABEL}, or lower --min-reward")
    assert "simulate-traffic" not in message
