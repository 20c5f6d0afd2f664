#!/usr/bin/env bash
# Measure wavecast side by side with the peers of the ws-bench instrument in bench/loadgen/.
#
#   bench/run.sh                                   # every peer, every scenario, 1 rep
#   bench/run.sh --reps 3 --wait-quiet 60          # extra arguments go to run.py (see run.py --help)
#   bench/run.sh --peers websockets picows wavecast --scenarios echo32 fan10k
#   WAVECAST_REF=HEAD bench/run.sh ...            # measure a commit, not the working tree
#
# The instrument is bench/loadgen/ (BENCH_INSTRUMENT=DIR runs another copy of it). Its first
# run installs the peers under $BENCH_HOME (~/.cache/ws-bench) with its setup.sh; the loadgen
# is built into bench/loadgen/build/ (gitignored), and raw results and server logs stay under
# $BENCH_HOME/results/. The markdown table and the raw jsonl are copied into bench/results/.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
INSTRUMENT="${BENCH_INSTRUMENT:-$BENCH_DIR/loadgen}"
[ -f "$INSTRUMENT/run.py" ] || { echo "bench/run.sh: no ws-bench instrument at $INSTRUMENT" >&2; exit 1; }
BENCH_HOME="${BENCH_HOME:-$HOME/.cache/ws-bench}"
export BENCH_HOME
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
SERVER="$BENCH_DIR/servers/wavecast_server.py"
RESULTS="$BENCH_DIR/results"

[ -x "$PYTHON" ] || { echo "bench/run.sh: $PYTHON not found; run 'make venv' first" >&2; exit 1; }

if [ ! -x "$BENCH_HOME/venv/bin/python" ]; then
    echo "bench/run.sh: the peers are not installed in $BENCH_HOME yet, running setup.sh" >&2
    bash "$INSTRUMENT/setup.sh"
fi

# WAVECAST_REF=<commit> measures that commit's src/ (a snapshot under $BENCH_HOME) instead of
# the working tree, so that edits made during a long run don't mix versions in one table.
if [ -n "${WAVECAST_REF:-}" ]; then
    sha="$(git -C "$REPO" rev-parse --short=12 "$WAVECAST_REF^{commit}")"
    snapshot="$BENCH_HOME/wavecast-src/$sha"
    if [ ! -d "$snapshot/src/wavecast" ]; then
        mkdir -p "$snapshot"
        git -C "$REPO" archive "$sha" src hatch_build.py | tar -x -C "$snapshot"
        # The snapshot gets its own C extensions, as an install of that commit would.
        if [ -f "$snapshot/hatch_build.py" ]; then "$PYTHON" "$snapshot/hatch_build.py" "$snapshot" >&2 || true; fi
    fi
    export PYTHONPATH="$snapshot/src${PYTHONPATH:+:$PYTHONPATH}"
    wavecast_version="$sha (snapshot of $WAVECAST_REF)"
else
    wavecast_version="$(git -C "$REPO" rev-parse --short=12 HEAD)"
    if [ -n "$(git -C "$REPO" status --porcelain -- src)" ]; then
        wavecast_version="$wavecast_version + uncommitted changes in src/"
    fi
fi
"$PYTHON" -c 'import wavecast, sys; print("bench/run.sh: wavecast from", wavecast.__file__, file=sys.stderr)'

# wavecast runs on uvloop when it is installed (wavecast.run's default); wavecast-asyncio forces
# asyncio's own loop, to compare like for like with the websockets row; wavecast-pure runs
# without the C extensions. Without --peers, run.py measures all of its peers and all three of
# ours. With --peers it appends the --server names to the list, so the variants are only
# passed when they are named there.
wavecast=(--server "wavecast=$PYTHON $SERVER --port {port}")
wavecast_asyncio=(--server "wavecast-asyncio=$PYTHON $SERVER --no-uvloop --port {port}")
# The pure-Python twins of the C speedups, as an install without a compiler runs.
wavecast_pure=(--server "wavecast-pure=env WAVECAST_NO_SPEEDUPS=1 $PYTHON $SERVER --port {port}")
# The handler as a plain function and every message to a sink: no task per connection, the
# callback API that ws, picows and uWebSockets offer. Measured only when named in --peers.
wavecast_callbacks=(--server "wavecast-callbacks=$PYTHON $SERVER --callbacks --port {port}")
servers=("${wavecast[@]}" "${wavecast_asyncio[@]}" "${wavecast_pure[@]}")
for arg in "$@"; do
    case "$arg" in
        --from-jsonl | --from-jsonl=*) exec bash "$INSTRUMENT/run.sh" "${servers[@]}" "$@" ;;
    esac
done
for arg in "$@"; do
    case "$arg" in
        --peers | --peers=*)
            servers=("${wavecast[@]}")
            for name in "$@"; do
                if [ "$name" = wavecast-asyncio ]; then servers+=("${wavecast_asyncio[@]}"); fi
                if [ "$name" = wavecast-pure ]; then servers+=("${wavecast_pure[@]}"); fi
                if [ "$name" = wavecast-callbacks ]; then servers+=("${wavecast_callbacks[@]}"); fi
            done
            break
            ;;
    esac
done

mkdir -p "$RESULTS"
stamp="$(date +%Y%m%d-%H%M%S)"
md="$RESULTS/run-$stamp.md"
out_dir="$BENCH_HOME/results/wavecast-$stamp"

bash "$INSTRUMENT/run.sh" "${servers[@]}" --out-dir "$out_dir" --md "$md" "$@"

echo "wavecast: $wavecast_version, $("$PYTHON" -c 'import uvloop; print("uvloop", uvloop.__version__)' 2>/dev/null || echo "no uvloop")" >>"$md"
for raw in "$out_dir"/run-*.jsonl; do
    if [ -f "$raw" ]; then cp "$raw" "$RESULTS/run-$stamp.jsonl"; fi
done
echo "bench/run.sh: wrote $md and $RESULTS/run-$stamp.jsonl (server logs: $out_dir)" >&2
