# wavecast: `make run` starts the demo, `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run run-serve screenshots run-echo test test-all chaos lint format types docs cov bench bench-c1m profile soak compliance fuzz deps venv node system-deps clean

# pip builds the optional C extensions (hatch_build.py) into src/ for the editable install.
$(VENV)/.installed: pyproject.toml hatch_build.py $(wildcard src/wavecast/*/_speedups.c src/wavecast/*.h)
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

# What the examples' pages load from npm, copied (or bundled) into each one's static/vendor/.
TRADING_VENDOR := $(addprefix examples/trading/static/vendor/,uPlot.iife.min.js uPlot.min.css)
$(TRADING_VENDOR): node_modules/.installed
	mkdir -p $(dir $@)
	cp node_modules/uplot/dist/$(notdir $@) $@

# Yjs (with lib0) bundled by esbuild into one script that defines the global `Y`.
COLLAB_VENDOR := examples/collab/static/vendor/yjs.js
$(COLLAB_VENDOR): node_modules/.installed
	mkdir -p $(dir $@)
	node_modules/.bin/esbuild node_modules/yjs/dist/yjs.mjs --bundle --minify --format=iife --global-name=Y \
		--log-level=warning --outfile=$@

node: node_modules/.installed $(VENDOR) $(TRADING_VENDOR) $(COLLAB_VENDOR)

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
	$(BIN)/ruff check src tests bench compliance fuzzing examples hatch_build.py
	$(BIN)/ruff format --check src tests bench compliance fuzzing examples hatch_build.py

format: venv
	$(BIN)/ruff format src tests bench compliance fuzzing examples
	$(BIN)/ruff check --fix src tests bench compliance fuzzing examples

types: venv
	$(BIN)/mypy

# The user reference (README, docs/*.md, the API from the docstrings; docs/README.md) in
# docs/_build/html. Any warning fails it; -E rereads every page, so that each warning is seen again.
docs: venv
	$(BIN)/sphinx-build -E -q -W --keep-going -b html docs docs/_build/html

# The suites whose code paths go through the C extensions (the parsers, a connection's writes,
# the fan-out; the servers, SDKs and browsers end to end), which `make test` runs again on the
# pure-Python twins. The engines, the multi-node tests and the examples reach the same paths only
# through these; `make test-all` runs everything both ways.
PURE_TESTS := tests/protocol tests/asyncio tests/realtime tests/hardening tests/interop tests/compliance \
	tests/fuzzing tests/e2e tests/server tests/test_speedups.py

# The representative suite: everything but tests marked slow or chaos with the C extensions,
# PURE_TESTS again with their pure-Python twins (WAVECAST_NO_SPEEDUPS=1); and the docs build.
test: deps lint types docs
	$(PY) -m pytest -m "not slow and not chaos" $(PYTEST_ARGS)
	WAVECAST_NO_SPEEDUPS=1 $(PY) -m pytest -m "not slow and not chaos" $(PYTEST_ARGS) $(PURE_TESTS)

test-all: deps lint types
	$(PY) -m pytest $(PYTEST_ARGS)
	WAVECAST_NO_SPEEDUPS=1 $(PY) -m pytest $(PYTEST_ARGS)

# The long forms of the scale-out chaos tests (tests/scale/test_chaos.py), with their counts.
chaos: deps
	$(PY) -m pytest -m chaos $(PYTEST_ARGS)

cov: deps
	$(PY) -m coverage run -m pytest -m "not slow and not chaos" -q
	$(PY) -m coverage report --include='src/wavecast/protocol/*,src/wavecast/codes.py' --fail-under=100
	$(PY) -m coverage report --fail-under=90

# Every peer and scenario of the ws-bench instrument (bench/loadgen/: built here, its peers installed
# under ~/.cache/ws-bench), channel fan-out, and memory per connection, 3 repetitions each; the
# tables land in bench/results/.
bench: venv system-deps
	bench/run.sh --reps 3 --wait-quiet 10
	$(PY) bench/realtime.py --reps 3 --wait-quiet 10
	$(PY) bench/memory.py -n 2000 | tee bench/results/memory-$$(date +%Y%m%d-%H%M%S).md

# C1M_CLIENTS (default 100,000) Centrifugo-protocol clients held on one `wavecast serve` for 5 minutes
# with their pings, then one publication to all and publications to 1,000 channels (bench/c1m.py;
# root: it raises kernel limits and restores them; past one process's descriptors, workers share a
# private redis-server, hence system-deps). The tables land in bench/results/c1m-*.
C1M_CLIENTS ?= 100000
bench-c1m: venv system-deps
	$(PY) bench/c1m.py --clients $(C1M_CLIENTS)

# Where the server's time goes under each scenario: py-spy, perf and cProfile tables in bench/profiles/.
profile: venv system-deps
	$(BIN)/pip install -q py-spy
	$(PY) bench/profile.py echo32 echo1m fan10k ch10k

# Two wavecast serve nodes on Redis under client churn for SOAK_MINUTES (default 60): RSS, file
# descriptors, tasks and loop lag sampled each minute must stay flat after the warm-up, and every
# monitored publication must arrive. The plot and report land in bench/results/soak-*.
SOAK_MINUTES ?= 60
soak: venv system-deps
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

# Each fuzz target for FUZZ_SECONDS (default 60), or for FUZZ_RUNS inputs (the long form:
# FUZZ_RUNS=10000000); FUZZ_TARGETS picks some. Crashes land in fuzzing/crashes/, and the
# inputs run per target in fuzzing/RESULTS.md.
fuzz: venv
	fuzzing/run.sh $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS) $(if $(FUZZ_SECONDS),--seconds $(FUZZ_SECONDS)),$(or $(FUZZ_SECONDS),60)) $(FUZZ_TARGETS)

# Every Autobahn case, as a server and as a client; rewrites compliance/RESULTS.md.
compliance: venv
	compliance/run.sh both '*'

# Retake the examples' screenshots that the README links to.
screenshots: deps
	WAVECAST_SCREENSHOTS=docs/screenshots $(PY) -m pytest examples $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules .mypy_cache .pytest_cache .ruff_cache .coverage
