"""A missing optional package names the extra that installs it, as one line on stderr.

Each case runs the real CLI in a subprocess whose import system lacks the package: a finder
ahead of the others answers for it as Python does for an uninstalled one
(``ModuleNotFoundError: No module named 'mcp'``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli_without(modules: list[str], args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        "class Uninstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {modules!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Uninstalled())\n"
        "from lightning.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "LIGHTNING_HOME": str(home), "LIGHTNING_TRAINER": "local"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("modules", "verb", "expected"),
    [
        (
            ["starlette"],
            "serve-models",
            "error: serve-models needs starlette, which is not installed: install `lightning-loop[server]` "
            "(pip install 'lightning-loop[server]')",
        ),
        (
            ["sklearn", "uvicorn"],
            "serve-models",
            "error: serve-models needs scikit-learn, uvicorn, which are not installed: "
            "install `lightning-loop[server]` (pip install 'lightning-loop[server]')",
        ),
        (
            ["mcp"],
            "serve-agent",
            "error: serve-agent needs mcp (No module named 'mcp'): install `lightning-loop[agent]` "
            "(pip install 'lightning-loop[agent]')",
        ),
        (
            ["starlette"],
            "serve-agent",
            "error: serve-agent needs starlette (No module named 'starlette'): install `lightning-loop[agent]` "
            "(pip install 'lightning-loop[agent]')",
        ),
    ],
)
def test_a_missing_extra_is_named(tmp_path: Path, modules: list[str], verb: str, expected: str) -> None:
    result = _cli_without(modules, [verb, "--port", str(_free_port())], tmp_path / "home")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr
