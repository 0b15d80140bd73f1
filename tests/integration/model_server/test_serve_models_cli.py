"""``serve-models``: the real command in a subprocess, reached with the openai SDK; its bad-input errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import OpenAI

from lightning.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_models_serves_until_terminated(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LIGHTNING_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning.cli", "serve-models", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", max_retries=0, timeout=2)
        deadline = time.monotonic() + 120  # a deadline, not a wait: imports can take 30 s under load
        while True:
            try:
                assert [model.id for model in client.models.list()] == [
                    "local-base",
                    "gpt-4o-mini",
                    "gpt-4o-mini-2024-07-18",
                    "gpt-4.1-mini",
                ]
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert (tmp_path / "home" / "models" / "jobs").is_dir()  # default data dir: $LIGHTNING_HOME/models
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (so the exit status says SIGTERM)
    assert process.returncode in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in stderr
    assert f"Model server on http://127.0.0.1:{port}/v1" in stderr


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["serve-models", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port must be between"),
        (["--port", "-1"], "--port must be between"),
        (["--max-file-mb", "0"], "--max-file-mb"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve-models", *args]) == 2
    assert message in capsys.readouterr().err


def test_an_unusable_data_dir_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    assert main(["serve-models", "--port", "0", "--data-dir", str(blocker / "models")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot use" in err
    assert "--data-dir" in err


def test_a_missing_server_extra_is_named_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    assert main(["serve-models", "--port", "0", "--data-dir", str(tmp_path / "data")]) == 1
    assert capsys.readouterr().err == (
        "error: serve-models needs scikit-learn, which is not installed: install `lightning-loop[server]` "
        "(pip install 'lightning-loop[server]')\n"
    )
    assert not (tmp_path / "data").exists()
