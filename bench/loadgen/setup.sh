#!/usr/bin/env bash
# Installs the peers' dependencies outside the repository and builds the C tools.
#   BENCH_HOME (default ~/.cache/ws-bench): venv/, node/node_modules/, results/
#   BUILD (default build/ here, gitignored): loadgen, refserver
# Only PyPI (pip) and the npm registry are contacted.
set -euo pipefail
cd "$(dirname "$0")"
BENCH_HOME="${BENCH_HOME:-$HOME/.cache/ws-bench}"
mkdir -p "$BENCH_HOME"
PY="${PYTHON:-python3}"
if [ ! -x "$BENCH_HOME/venv/bin/python" ]; then "$PY" -m venv "$BENCH_HOME/venv"; fi
"$BENCH_HOME/venv/bin/pip" install -q --upgrade pip
"$BENCH_HOME/venv/bin/pip" install -q websockets picows aiohttp uvloop
# the Socket.IO peers: python-socketio 5 on aiohttp, and on uvicorn (ASGI) with httptools
"$BENCH_HOME/venv/bin/pip" install -q "python-socketio>=5,<6" "uvicorn[standard]"
# socketify bundles a prebuilt uWebSockets/uSockets .so in its wheel/sdist; optional
"$BENCH_HOME/venv/bin/pip" install -q socketify || echo "setup: socketify failed to install (peer will be skipped)" >&2
if command -v npm >/dev/null; then
  mkdir -p "$BENCH_HOME/node"
  ( cd "$BENCH_HOME/node" && [ -f package.json ] || npm init -y >/dev/null )
  # bufferutil/utf-8-validate ship prebuilt linux-x64 binaries inside the npm tarballs; ws uses them if present
  ( cd "$BENCH_HOME/node" && npm install --silent --no-audit --no-fund ws bufferutil utf-8-validate "socket.io@4" ) \
    || echo "setup: npm install ws failed (node-ws and node-socketio peers will be skipped)" >&2
else
  echo "setup: npm not found (node-ws peer will be skipped)" >&2
fi
make -s test
echo "setup: done (BENCH_HOME=$BENCH_HOME, tools in ${BUILD:-$PWD/build})"
