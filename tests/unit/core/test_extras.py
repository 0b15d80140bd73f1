"""lightning.extras: the extras are pyproject.toml's, and a missing module maps to the right one."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from lightning.domain.errors import ConfigurationError
from lightning.extras import EXTRAS, extra_for, missing_dependency, require_extra

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_the_extras_are_pyprojects() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for extra, packages in EXTRAS.items():
        names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in declared[extra]}
        assert {distribution for _, distribution in packages} == names, extra


@pytest.mark.parametrize(
    ("module", "command", "expected"),
    [
        ("sklearn", None, ("server", "scikit-learn")),
        ("starlette", "serve-models", ("server", "starlette")),
        ("starlette", "serve-agent", ("agent", "starlette")),
        ("mcp.server.mcpserver", None, ("agent", "mcp")),
        ("opentelemetry", None, ("agent", "opentelemetry-sdk")),
        ("azure.monitor", "serve-agent", ("agent", "azure-monitor-opentelemetry")),
        ("matplotlib.figure", "compare-versions", ("charts", "matplotlib")),
        ("azure.ai", None, ("judge", "azure-ai-evaluation")),
        ("azure", None, None),  # filled by the core dependencies too: no extra to name
        ("lightning.nope", None, None),
        ("yaml", None, None),
    ],
)
def test_extra_for(module: str, command: str | None, expected: tuple[str, str] | None) -> None:
    assert extra_for(module, command=command) == expected


def test_missing_dependency_names_the_extra_or_nothing() -> None:
    error = missing_dependency(ModuleNotFoundError("No module named 'sklearn'", name="sklearn"))
    assert isinstance(error, ConfigurationError)
    assert str(error) == (
        "this command needs scikit-learn (No module named 'sklearn'): install `lightning-loop[server]` "
        "(pip install 'lightning-loop[server]')"
    )
    assert (
        missing_dependency(ModuleNotFoundError("No module named 'lightning.x'", name="lightning.x")) is None
    )


def test_require_extra_lists_every_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    require_extra("server", command="serve-models")  # installed here
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ConfigurationError) as caught:
        require_extra("server", command="serve-models")
    assert str(caught.value) == (
        "serve-models needs scikit-learn, uvicorn, which are not installed: install `lightning-loop[server]` "
        "(pip install 'lightning-loop[server]')"
    )
