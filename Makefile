# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make test` on one pytest-xdist worker per core (at most 4), test by test in collection
# order, Ray's tests first (tests/conftest.py). `make test PARALLEL=` runs serially.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadgroup --no-loadscope-reorder

.PHONY: demo test test-fast lint format install clean protos protos-lint protos-breaking

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ofa-fleet demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "slow or not slow" --durations=15 $(PARALLEL)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not integration"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate services/ofa_fleet/v1/ from protos/ (commit the result; never edit it by hand).
protos: $(STAMP)
	$(BIN)/python protos/generate.py

# buf lint, with buf from npm installed into .tools/ on first use.
protos-lint:
	test -x .tools/node_modules/.bin/buf || npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75
	cd protos && ../.tools/node_modules/.bin/buf lint

# buf breaking against the last release tag (or BASE=<git ref>): what devices in the field
# were built against must keep working.
BASE ?= $(shell git describe --tags --abbrev=0 --match 'v*' 2>/dev/null)
protos-breaking: protos-lint
	@test -n "$(BASE)" || { echo "no release tag (v*) yet; give BASE=<git ref>"; exit 2; }
	cd protos && ../.tools/node_modules/.bin/buf breaking --against "../.git#ref=$(BASE),subdir=protos"

clean:
	rm -rf $(VENV) runs .tools .pytest_cache .ruff_cache .mypy_cache
