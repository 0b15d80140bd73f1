# Two set-up commands on a fresh clone: `make demo` and `make test`. Both install what they need.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
# The scanners live in their own virtualenv: see requirements-scan.txt for why.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test lint unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

$(SCAN_STAMP): requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PY) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install -q -r requirements-scan.txt
	touch $(SCAN_STAMP)

# Local emulators for the integration tests (Azurite, the Cosmos DB REST emulator).
$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lightning.demo

# Infrastructure files checkov scans (one run: its start-up dominates the time).
CHECKOV_FILES := Dockerfile $(wildcard infra/bicep/*.bicep infra/bicep/modules/*.bicep infra/k8s/*.yaml)

lint: $(STAMP) $(SCAN_STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .
	$(BIN)/mypy lightning function_app.py  # strict on domain/ports/services (pyproject overrides)
	$(BIN)/lint-imports
	# Offline: --skip-download never contacts the policy server; skips and their reasons in .checkov.yaml.
	$(SCAN_VENV)/bin/checkov --config-file .checkov.yaml --skip-download --framework bicep kubernetes dockerfile \
		$(addprefix -f ,$(CHECKOV_FILES))
	# Exits non-zero only on a failed check; its warnings and their false positives: docs/functions.md.
	$(SCAN_VENV)/bin/azure-functions-doctor doctor --path . --profile full

# Debian's chromium for the review console's page tests (Playwright drives it; its own browser download
# is unreachable). Installed as root (as CI runs); otherwise the page tests skip with one line.
.PHONY: browser
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "browser tests will be skipped: no /usr/bin/chromium and it cannot be installed here (as root: apt-get install -y chromium)"

test: $(STAMP) $(NODE_STAMP) browser lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf .lightning .pytest_cache .mypy_cache .ruff_cache
