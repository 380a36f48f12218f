# csgen developer tasks. Every target installs what it needs first, so each
# works on a fresh clone: `make demo` runs the generator on an embedded Kinesis,
# `make test` runs the whole test suite (emulators and a local Kubernetes
# control plane included).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/emulators/node/node_modules/.installed

.PHONY: demo test lint unit bench controlplane install clean

demo: $(STAMP)
	$(BIN)/csgen run --rate 50 --duration 10

test: $(STAMP) $(NODE_STAMP) controlplane lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check generator operator tests $(wildcard benchmarks)
	$(BIN)/ruff format --check generator operator tests $(wildcard benchmarks)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/codespell generator operator tests docs README.md deploy

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not kinesis and not controlplane and not slow"

bench: $(STAMP) $(NODE_STAMP) controlplane
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks

controlplane: $(STAMP)
	$(BIN)/python -m tests.controlplane build

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): tests/emulators/node/package.json tests/emulators/node/package-lock.json
	npm ci --prefix tests/emulators/node --no-audit --no-fund
	touch $(NODE_STAMP)

clean:
	rm -rf $(VENV) tests/emulators/node/node_modules .pytest_cache .mypy_cache .ruff_cache
