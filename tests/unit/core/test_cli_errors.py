"""The CLI never shows a traceback: one line on stderr and a meaningful exit code."""

from __future__ import annotations

import pytest

from lightning.cli import main


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-config", "--no-such-flag"]) == 2
    assert "no-such-flag" in capsys.readouterr().err


def test_show_config_json_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COSMOS_KEY", "emulator-key-value")
    assert main(["show-config", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"COSMOS_KEY": "********"' in out
    assert "emulator-key-value" not in out


def test_help_lists_the_workshop_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in (
        "list-episodes",
        "label-episode",
        "label-batch",
        "build-dataset",
        "dataset-info",
        "start-training",
        "get-training-status",
        "promote-model",
        "compare-versions",
    ):
        assert verb in out
