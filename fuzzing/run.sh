#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzzing/run.sh [SECONDS per target, default 60].
# Crashes are written to fuzzing/crashes/; each one must become a regression test.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SECONDS_PER_TARGET="${1:-60}"
"$PY" -c "import atheris" 2>/dev/null || "$ROOT/.venv/bin/pip" install -q atheris
mkdir -p "$HERE/crashes" "$HERE/corpus"
rc=0
for target in frames handshake deflate protobuf; do
  corpus="$HERE/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s" >&2
  log="$HERE/crashes/$target.log"
  if ! (cd "$HERE" && "$PY" "fuzz_$target.py" "$corpus" "$HERE/seeds/$target" -max_total_time="$SECONDS_PER_TARGET" \
        -artifact_prefix="$HERE/crashes/$target-" -print_final_stats=1 > "$log" 2>&1); then
    echo "fuzz: $target FOUND A CRASH, see $log" >&2
    rc=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" | sed "s/^/fuzz: $target /" >&2 || true
done
exit "$rc"
