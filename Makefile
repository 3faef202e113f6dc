# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make test` on one pytest-xdist worker per core (at most 4), test by test in collection
# order, Ray's tests first (tests/conftest.py). `make test PARALLEL=` runs serially.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadgroup --no-loadscope-reorder

.PHONY: demo test test-fast lint format install clean protos protos-lint protos-breaking lock

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

# deploy/requirements/*.lock, the images' hash-locked requirements (deploy/README.md), for
# CPython 3.11 on x86-64 Linux, with uv installed into .tools/uv on first use. Run it after
# changing a dependency in pyproject.toml (tests/deploy/test_dockerfile.py fails until then).
# Versions already locked are kept; `make lock LOCK_FLAGS=--upgrade` takes the newest.
UV_VERSION ?= 0.13.10
LOCK_FLAGS ?=
REQUIREMENTS := deploy/requirements
UV_COMPILE = .tools/uv/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock' $(LOCK_FLAGS) \
	pyproject.toml $(REQUIREMENTS)/build.in
lock:
	test -x .tools/uv/bin/uv || { $(PYTHON) -m venv .tools/uv && .tools/uv/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) --extra services -o $(REQUIREMENTS)/services.lock
	$(UV_COMPILE) --extra server $(REQUIREMENTS)/torch-cpu.in \
		--override $(REQUIREMENTS)/no-torch.txt -o $(REQUIREMENTS)/server.lock

clean:
	rm -rf $(VENV) runs .tools .pytest_cache .ruff_cache .mypy_cache
