#!/usr/bin/env bash
# Build the loadgen of the shared ws-bench instrument with wavecast's realtime.patch applied:
# the same program, plus options that let its fan-out mode speak a real-time protocol
# (--sub-init, --pub-path, --unwrap) and spread subscribers over two nodes (--alt-port).
# The instrument's sources are copied, never changed in place.
#
#   bench/loadgen/build.sh            -> $BENCH_HOME/build/loadgen-rt
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="${SHARED:-$REPO/../shared}"
BENCH_HOME="${BENCH_HOME:-$HOME/.cache/ws-bench}"
OUT="$BENCH_HOME/build/loadgen-rt"
WORK="$BENCH_HOME/wavecast-loadgen"
if [ -x "$OUT" ] && [ "$OUT" -nt "$HERE/realtime.patch" ] && [ "$OUT" -nt "$SHARED/bench/loadgen.c" ]; then
    exit 0
fi
rm -rf "$WORK"
mkdir -p "$WORK" "$(dirname "$OUT")"
cp "$SHARED/bench/loadgen.c" "$SHARED/bench/wsutil.h" "$WORK/"
(cd "$WORK" && git apply "$HERE/realtime.patch")  # git is there wherever the repository is
${CC:-cc} -O2 -Wall -Wextra -g -o "$OUT" "$WORK/loadgen.c"
echo "bench/loadgen/build.sh: built $OUT" >&2
