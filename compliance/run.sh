#!/usr/bin/env bash
# Run the Autobahn|Testsuite against wavecast, as a server and as a client.
#
# Usage: compliance/run.sh [server|client|both] [CASES]
#   CASES: "*" (every case, the default), "quick", or a list such as "1.*,12.1.*"
# Reports go to compliance/reports/{server,client}/; compliance/RESULTS.md is rewritten
# from them when both ran with every case. The Autobahn runner is compliance/autobahn/
# (AUTOBAHN_HOME overrides it); its setup.sh installs the suite from PyPI into a cached venv
# ($AUTOBAHN_VENV, ~/.cache/autobahn-venv) the first time. Exits 1 if any case FAILED, 2 if
# the runner can't be set up.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
AUTOBAHN_HOME="${AUTOBAHN_HOME:-$HERE/autobahn}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
MODE="${1:-both}"
CASES="${2:-*}"
REPORTS="$HERE/reports"
rc=0

fail() { echo "compliance/run.sh: $*" >&2; exit 2; }
case "$MODE" in
  server | client | both) ;;
  *) echo "usage: $0 [server|client|both] [CASES]" >&2; exit 2 ;;
esac
[ -x "$PY" ] || fail "$PY not found; run 'make venv' first (or set PYTHON=)"
[ -x "$AUTOBAHN_HOME/setup.sh" ] || fail "no Autobahn runner at $AUTOBAHN_HOME (AUTOBAHN_HOME is set to a wrong directory?)"
# Set up once here, so that a failure reads as one, not as a failed run of each suite.
"$AUTOBAHN_HOME/setup.sh" >&2 || fail "$AUTOBAHN_HOME/setup.sh could not set up the Autobahn|Testsuite (it needs python3 and PyPI; see its messages above)"

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_server() {
  local port pid
  port="$(free_port)"
  "$PY" "$HERE/echo_server.py" --port "$port" > "$REPORTS/server-echo.log" 2>&1 &
  pid=$!
  AUTOBAHN_AGENT=wavecast "$AUTOBAHN_HOME/run-server-suite.sh" "ws://127.0.0.1:$port" "$CASES" "$REPORTS/server" || rc=1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

run_client() {
  "$AUTOBAHN_HOME/run-client-suite.sh" -p "$(free_port)" -c "$CASES" -a wavecast -o "$REPORTS/client" -- \
    "$PY" "$HERE/client.py" || rc=1
}

mkdir -p "$REPORTS"
case "$MODE" in
  server) run_server ;;
  client) run_client ;;
  both) run_server; run_client ;;
esac
if [ "$MODE" = both ] && [ "$CASES" = "*" ]; then
  "$PY" "$HERE/results.py" "$REPORTS" > "$HERE/RESULTS.md"
  echo "compliance: wrote $HERE/RESULTS.md" >&2
fi
exit "$rc"
