# wavecast: `make run` starts the demo, `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED ?= ../shared

.PHONY: run test test-all lint format types cov bench compliance fuzz deps venv node system-deps clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.installed

system-deps:
	scripts/install-system-deps.sh

deps: venv node system-deps

run: venv
	$(BIN)/wavecast demo --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check src tests bench compliance fuzzing
	$(BIN)/ruff format --check src tests bench compliance fuzzing

format: venv
	$(BIN)/ruff format src tests bench compliance fuzzing
	$(BIN)/ruff check --fix src tests bench compliance fuzzing

types: venv
	$(BIN)/mypy

# The representative suite: everything but tests marked slow.
test: deps lint types
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: deps lint types
	$(PY) -m pytest $(PYTEST_ARGS)

cov: deps
	$(PY) -m coverage run -m pytest -m "not slow" -q
	$(PY) -m coverage report --include='src/wavecast/protocol/*,src/wavecast/codes.py' --fail-under=100
	$(PY) -m coverage report --fail-under=90

bench: venv
	bench/run.sh

# Each fuzz target for FUZZ_SECONDS (default 60); crashes land in fuzzing/crashes/.
fuzz: venv
	fuzzing/run.sh $(or $(FUZZ_SECONDS),60)

# Every Autobahn case, as a server and as a client; rewrites compliance/RESULTS.md.
compliance: venv
	compliance/run.sh both '*'

clean:
	rm -rf $(VENV) node_modules .mypy_cache .pytest_cache .ruff_cache .coverage
