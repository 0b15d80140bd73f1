"""The Function App's ``requirements.txt`` against what ``function_app.py`` really imports.

The remote build installs ``requirements.txt`` only (``.funcignore`` keeps ``pyproject.toml`` and the
rest out of the package), so every third-party import reachable from ``function_app.py`` must be
satisfied by it, and nothing else belongs there. Reachable means: the ``import`` statements of every
``lightning`` module the app imports, followed transitively — including imports inside functions,
which run at invocation — plus the adapters ``lightning.bootstrap`` loads by name
(``"lightning.adapters.cosmos.episodes.CosmosEpisodeStore"``). Imports under ``if TYPE_CHECKING:``
never run and are left out.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = ROOT / "requirements.txt"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        assert node.level == 0, "relative imports are not used in this project"
        assert node.module is not None
        self.names.add(node.module)
        self.names.update(f"{node.module}.{alias.name}" for alias in node.names)

    def visit_Constant(self, node: ast.Constant) -> None:
        # bootstrap's adapters by name: "lightning.adapters.<module>.<Class>"
        value = node.value
        if (
            isinstance(value, str)
            and value.startswith("lightning.")
            and value.replace(".", "").isidentifier()
        ):
            module, _, last = value.rpartition(".")
            self.names.add(module if last[:1].isupper() else value)


def _source(module: str) -> Path | None:
    if module == "function_app":
        return ROOT / "function_app.py"
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None  # an attribute (``from lightning.x import name``), not a module


@cache
def reachable_imports() -> dict[str, str]:
    """Third-party modules imported on some path from ``function_app.py`` → one module importing it."""
    third_party: dict[str, str] = {}
    seen: set[str] = set()
    pending = ["function_app"]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        source = _source(module)
        if source is None:
            continue
        visitor = _Imports()
        visitor.visit(ast.parse(source.read_text(), str(source)))
        for name in visitor.names:
            top = name.split(".")[0]
            if top == "lightning":
                parts = name.split(".")
                pending.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(name, module)
    assert "lightning.functions.finetune" in seen, "the walk should reach the blueprints"
    return third_party


@cache
def _providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@cache
def _record(name: str) -> tuple[Path, frozenset[str]]:
    """A distribution's install base and the files its RECORD lists (relative to that base)."""
    dist = importlib.metadata.distribution(name)
    return Path(str(dist.locate_file(""))), frozenset(str(file) for file in dist.files or [])


@cache
def _owner(origin: str, top_level: str) -> str | None:
    """The distribution whose RECORD lists ``origin`` (only those providing ``top_level`` are looked at)."""
    for name in _providers().get(top_level, []):
        base, files = _record(name)
        try:
            relative = Path(origin).relative_to(base).as_posix()
        except ValueError:
            continue
        if relative in files:
            return canonicalize_name(name)
    return None


def distribution(module: str) -> str:
    """The installed distribution that provides ``module`` (its first package that is not a namespace)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        spec = importlib.util.find_spec(".".join(parts[:i]))
        assert spec is not None, f"{module} is not installed"
        if spec.origin not in (None, "namespace"):
            owner = _owner(spec.origin, parts[0])
            assert owner is not None, f"no installed distribution lists {spec.origin}"
            return owner
    raise AssertionError(f"{module} resolves to namespace packages only")


def requirements() -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    parsed = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in parsed}


def test_every_reachable_import_is_satisfied_by_requirements_txt() -> None:
    listed = requirements()
    missing = {
        module: f"{distribution(module)} (imported by {importer})"
        for module, importer in reachable_imports().items()
        if distribution(module) not in listed
    }
    assert missing == {}


def test_requirements_txt_holds_only_what_the_functions_import() -> None:
    imported = {distribution(module) for module in reachable_imports()}
    assert set(requirements()) - imported == set()


def test_the_heavy_local_only_packages_stay_out() -> None:
    # The model server's trainer, the agent's server and the CLI's charts never run in the Function App.
    assert not {"numpy", "scipy", "scikit-learn", "starlette", "uvicorn", "mcp", "matplotlib"} & set(
        requirements()
    )


@pytest.mark.parametrize("name", sorted(requirements()))
def test_the_tested_versions_satisfy_requirements_txt(name: str) -> None:
    requirement = requirements()[name]
    installed = importlib.metadata.version(name)
    assert requirement.specifier.contains(installed, prereleases=True), (name, installed, str(requirement))
    # An upper bound keeps a remote build from picking up a major version nobody has tested.
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in requirement.specifier), str(requirement)
