"""ManualClock: monotonic time that moves only when someone sleeps, for adapters that wait.

Pass ``clock.monotonic`` and ``clock.sleep`` where an adapter takes them: its deadlines and backoff then
run in simulated seconds — a 600 s budget passes in as many loop turns as the adapter makes — and
``sleeps`` records every delay it asked for.
"""

from __future__ import annotations


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            # A wait loop that sleeps nothing would spin forever on this clock, and waste CPU on a real one.
            raise AssertionError(f"asked to sleep {seconds!r} s")
        self.sleeps.append(seconds)
        self.now += seconds
