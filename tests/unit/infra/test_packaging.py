"""What the Function App's package holds (``.funcignore``) and how ``make lint`` runs the scanners.

``.funcignore`` uses .gitignore patterns; ``pathspec`` (gitwildmatch, the same rules) applies it to the
repository's files here, so the package is exactly ``function_app.py``, ``host.json``,
``requirements.txt`` and the ``lightning`` package — nothing a new top-level file slips in through.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pathspec
import yaml

ROOT = Path(__file__).resolve().parents[3]
APP_FILES = {"function_app.py", "host.json", "requirements.txt"}


def funcignore() -> pathspec.PathSpec:
    return pathspec.PathSpec.from_lines("gitwildmatch", (ROOT / ".funcignore").read_text().splitlines())


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in listed.stdout.splitlines() if line and (ROOT / line).exists()]


def test_the_package_holds_the_app_and_nothing_else() -> None:
    spec = funcignore()
    packaged = {path for path in repository_files() if not spec.match_file(path)}
    outside = {path for path in packaged if path not in APP_FILES and not path.startswith("lightning/")}
    assert outside == set()
    assert packaged >= APP_FILES
    assert "lightning/functions/finetune.py" in packaged
    assert "lightning/agents/autonomous-agent.yaml" in packaged  # data the app reads at run time


def test_local_state_and_tooling_stay_out() -> None:
    spec = funcignore()
    for path in (
        ".venv/lib/python3.11/site-packages/x.py",
        "node_modules/azurite/package.json",
        ".lightning/lightning.db",
        "tests/unit/test_x.py",
        "bench/bench_x.py",
        "lightning/__pycache__/config.cpython-311.pyc",
        "local.settings.json",
        ".env",
        ".azure/dev/.env",
    ):
        assert spec.match_file(path), path


# --- scanners --------------------------------------------------------------------------------------------


def lint_recipe() -> str:
    makefile = (ROOT / "Makefile").read_text()
    return makefile[makefile.index("\nlint:") : makefile.index("\ntest:")]


def test_make_lint_runs_checkov_offline_over_the_infrastructure_and_the_dockerfile() -> None:
    recipe = lint_recipe()
    assert "checkov --config-file .checkov.yaml --skip-download" in recipe
    assert "--framework bicep kubernetes dockerfile" in recipe
    makefile = (ROOT / "Makefile").read_text()
    scanned = re.search(r"^CHECKOV_FILES := (.+)$", makefile, re.MULTILINE)
    assert scanned is not None
    assert scanned.group(1).split()[0] == "Dockerfile"
    for pattern in ("infra/bicep/*.bicep", "infra/bicep/modules/*.bicep", "infra/k8s/*.yaml"):
        assert pattern in scanned.group(1)
    assert "azure-functions-doctor doctor --path . --profile full" in recipe


def test_every_checkov_skip_says_why() -> None:
    text = (ROOT / ".checkov.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["skip-download"] is True
    skips = config["skip-check"]
    assert len(skips) == len(set(skips))
    for skip in skips:
        (line,) = [line for line in text.splitlines() if line.strip().startswith(f"- {skip} ")]
        reason = line.split("#", 1)[1].strip() if "#" in line else ""
        assert len(reason) > 20, f"{skip} has no reason"
    assert len(skips) <= 12, "the skip list is meant to stay short"
