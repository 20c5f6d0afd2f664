# wavecast: `make run` starts the demo, `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED ?= ../shared

.PHONY: run run-serve screenshots run-echo test test-all lint format types cov bench compliance fuzz deps venv node system-deps clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# centrifuge-js from npm, served by the demo pages as static files: its browser bundle for
# the JSON protocol, and the one for protobuf (binary data), which defines the same Centrifuge.
VENDOR := src/wavecast/static/vendor/centrifuge.js src/wavecast/static/vendor/centrifuge.protobuf.js
src/wavecast/static/vendor/%.js: node_modules/.installed
	mkdir -p $(dir $@)
	cp node_modules/centrifuge/dist/$(notdir $@) $@

node: node_modules/.installed $(VENDOR)

# The dev configuration that `make run` uses: fresh secrets, the chat demo and the admin page on.
wavecast.toml: | venv
	$(BIN)/wavecast genconfig --dev --config $@

system-deps:
	scripts/install-system-deps.sh

deps: venv node system-deps

# The gallery of examples at http://$(HOST):$(PORT)/, with every demo's feeds and devices.
run: venv node wavecast.toml
	$(PY) -m examples.gallery --config wavecast.toml --host $(HOST) --port $(PORT)

# wavecast serve alone: the API, /admin and the chat demo at /.
run-serve: venv node wavecast.toml
	$(BIN)/wavecast serve --config wavecast.toml --host $(HOST) --port $(PORT)

# The WebSocket echo demo of the core library alone.
run-echo: venv
	$(BIN)/wavecast demo --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check src tests bench compliance fuzzing examples
	$(BIN)/ruff format --check src tests bench compliance fuzzing examples

format: venv
	$(BIN)/ruff format src tests bench compliance fuzzing examples
	$(BIN)/ruff check --fix src tests bench compliance fuzzing examples

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

# Each fuzz target for FUZZ_SECONDS (default 60); crashes land in fuzzing/crashes/, and the
# inputs run per target in fuzzing/RESULTS.md.
fuzz: venv
	fuzzing/run.sh $(or $(FUZZ_SECONDS),60)

# Every Autobahn case, as a server and as a client; rewrites compliance/RESULTS.md.
compliance: venv
	compliance/run.sh both '*'

# Retake the examples' screenshots that the README links to.
screenshots: deps
	WAVECAST_SCREENSHOTS=docs/screenshots $(PY) -m pytest examples $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules .mypy_cache .pytest_cache .ruff_cache .coverage
