#!/usr/bin/env bash
# Build (if needed) and run the side-by-side table. All arguments go to run.py (see run.py --help).
set -euo pipefail
cd "$(dirname "$0")"
BENCH_HOME="${BENCH_HOME:-$HOME/.cache/ws-bench}"
export BENCH_HOME
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 10100 ]; then echo "run.sh: warning: ulimit -n is $(ulimit -n); 10k-connection scenarios need ~10100 per process" >&2; fi
cc="${CC:-cc}"
command -v make >/dev/null && command -v "${cc%% *}" >/dev/null \
  || { echo "run.sh: make and a C compiler ($cc) build the loadgen; install them (Debian: build-essential)" >&2; exit 1; }
make -s
PY="$BENCH_HOME/venv/bin/python"; [ -x "$PY" ] || PY=python3
exec "$PY" run.py "$@"
