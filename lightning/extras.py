"""Optional dependencies: which extra of ``lightning-loop`` installs a module, and the error that says so.

The extras are pyproject.toml's (a unit test holds the two equal). Entry points call
``require_extra`` before a command that needs one (``serve-models``), and the CLI turns any
``ModuleNotFoundError`` of an optional package into ``missing_dependency``'s one-line error:
"serve-agent needs mcp (No module named 'mcp'): install `lightning-loop[agent]` …" instead of
"No module named 'mcp'".
"""

from __future__ import annotations

import importlib.util

from lightning.domain.errors import ConfigurationError

EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "server": (("sklearn", "scikit-learn"), ("starlette", "starlette"), ("uvicorn", "uvicorn")),
    "agent": (
        ("mcp", "mcp"),
        ("starlette", "starlette"),
        ("uvicorn", "uvicorn"),
        ("opentelemetry.sdk", "opentelemetry-sdk"),
        ("azure.monitor.opentelemetry", "azure-monitor-opentelemetry"),
    ),
    "console": (("starlette", "starlette"), ("uvicorn", "uvicorn")),
    "judge": (("azure.ai.evaluation", "azure-ai-evaluation"),),
    "charts": (("matplotlib", "matplotlib"),),
}
"""extra → (import name, distribution name) of each package it adds."""

COMMAND_EXTRAS = {
    "serve-models": "server",
    "serve-agent": "agent",
    "serve-console": "console",
    "compare-versions": "charts",
}
"""The extra a CLI verb needs (it decides for modules that two extras share, such as starlette)."""


# Namespace packages the core dependencies fill too: missing as a whole, no extra is to blame.
_SHARED_NAMESPACES = frozenset({"azure"})


def _provides(import_name: str, missing: str) -> bool:
    """Whether installing ``import_name``'s package brings module ``missing`` (or one of its parents)."""
    if missing == import_name or missing.startswith(import_name + "."):
        return True
    return import_name.startswith(missing + ".") and missing not in _SHARED_NAMESPACES


def extra_for(module: str, *, command: str | None = None) -> tuple[str, str] | None:
    """(extra, distribution) that installs ``module``; the command's own extra first. None: not optional."""
    preferred = COMMAND_EXTRAS.get(command or "")
    order = sorted(EXTRAS, key=lambda extra: extra != preferred)  # stable: the command's extra first
    for extra in order:
        for import_name, distribution in EXTRAS[extra]:
            if _provides(import_name, module):
                return extra, distribution
    return None


def _install(extra: str) -> str:
    return f"install `lightning-loop[{extra}]` (pip install 'lightning-loop[{extra}]')"


def missing_dependency(
    error: ModuleNotFoundError, *, command: str | None = None
) -> ConfigurationError | None:
    """The error naming the extra for a missing optional module; None when the module is not optional."""
    module = error.name or ""
    found = extra_for(module, command=command) if module else None
    if found is None:
        return None
    extra, distribution = found
    # Not "not installed": an old version can lack a submodule; installing the extra upgrades it.
    return ConfigurationError(
        f"{command or 'this command'} needs {distribution} (No module named {module!r}): {_install(extra)}"
    )


def _installed(import_name: str) -> bool:
    try:
        return importlib.util.find_spec(import_name) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module without a spec
        return False


def require_extra(extra: str, *, command: str) -> None:
    """``ConfigurationError`` naming ``extra`` when any of its packages is missing — before the command
    starts, so a missing piece is not found halfway (scikit-learn is first imported by a training job)."""
    missing = [distribution for import_name, distribution in EXTRAS[extra] if not _installed(import_name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigurationError(
            f"{command} needs {', '.join(missing)}, which {verb} not installed: {_install(extra)}"
        )
