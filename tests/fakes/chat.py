"""``choose_tools`` for ChatModel fakes: one ``choose_tool`` after another, like a pool of one.

``time_limit`` is honoured on ``clock`` (a fake with ``now()`` that tests move), so budget tests run in
simulated seconds; without a clock no limit applies (fakes answer at once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.domain.errors import LightningError
from lightning.ports.chat import ChoiceOutcome


class OneByOne:
    """Mix into a fake that has ``choose_tool``."""

    clock: Any = None

    def choose_tools(
        self,
        queries: Sequence[str],
        *,
        model: str,
        system_prompt: str,
        tools: list[dict[str, Any]],
        time_limit: float | None = None,
    ) -> list[ChoiceOutcome]:
        started = self.clock.now() if self.clock is not None else None
        outcomes: list[ChoiceOutcome] = []
        for query in queries:
            if (
                time_limit is not None
                and started is not None
                and (self.clock.now() - started).total_seconds() >= time_limit
            ):
                outcomes.append(None)
                continue
            try:
                outcomes.append(
                    self.choose_tool(model=model, system_prompt=system_prompt, tools=tools, query=query)  # type: ignore[attr-defined]
                )
            except LightningError as exc:
                outcomes.append(exc)
        return outcomes
