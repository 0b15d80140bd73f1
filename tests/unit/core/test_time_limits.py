"""A promotion must fit in the host's function timeout: checked once, at start-up, on both hosts."""

from __future__ import annotations

import pytest

from lightning.config import Settings, check_time_limits
from lightning.domain.errors import ConfigurationError
from lightning.functions import _runtime


def test_the_defaults_fit_and_derive_the_gates_budget() -> None:
    settings = Settings()
    check_time_limits(settings)
    assert settings.gate_budget_seconds == 600 - 300 - 60


@pytest.mark.parametrize(
    "overrides",
    [
        {"rollout_timeout_seconds": 600},  # the old default: nothing left for the gate
        {"gate_time_budget_seconds": 400},  # 400 + 300 + 60 > 600
        {"function_timeout_seconds": 380},  # derived budget 20 s < 30 s
    ],
)
def test_settings_that_cannot_fit_are_refused_with_what_to_change(overrides: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_time_limits(Settings(**overrides))
    message = str(caught.value)
    assert "cannot fit in FUNCTION_TIMEOUT_SECONDS" in message
    assert "ROLLOUT_TIMEOUT_SECONDS" in message
    assert "functionTimeout" in message


def test_the_functions_host_refuses_them_on_its_first_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_TIMEOUT_SECONDS", "600")
    _runtime.use_container(None)
    with pytest.raises(ConfigurationError, match="cannot fit"):
        _runtime.container()
    _runtime.use_container(None)


def test_run_loop_refuses_them_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lightning.cli import main

    monkeypatch.setenv("GATE_TIME_BUDGET_SECONDS", "500")
    assert main(["run-loop", "--once"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "cannot fit in FUNCTION_TIMEOUT_SECONDS" in err[0]
