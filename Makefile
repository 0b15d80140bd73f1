# Two set-up commands on a fresh clone: `make demo` and `make test`. Both install what they need.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test lint unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

# Local emulators for the integration tests (Azurite, the Cosmos DB REST emulator).
$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lightning.demo

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .
	$(BIN)/mypy lightning function_app.py  # strict on domain/ports/services (pyproject overrides)
	$(BIN)/lint-imports

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
