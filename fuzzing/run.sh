#!/usr/bin/env bash
# Run fuzz targets, each bounded in time or in executions:
#   fuzzing/run.sh [SECONDS] [TARGET...]          each target for SECONDS (default 60)
#   fuzzing/run.sh --runs N [--seconds S] [TARGET...]   each target for N inputs (and at most S s)
# With no TARGET, every target runs, one after the other. Crashes are written to fuzzing/crashes/;
# each one must become a regression test in tests/fuzzing/. Each target's row in
# fuzzing/RESULTS.md (inputs executed, time, commit) is replaced as soon as the target ends, so
# that two runs of different targets can share the file and a long run shows what it has done.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

# name:script:environment. frames-pure parses with the pure Python twins of the C speedups,
# which atheris instruments; frames runs the C parser that serves by default.
TARGETS=(
  "frames:frames:"
  "frames-pure:frames:WAVECAST_NO_SPEEDUPS=1"
  "handshake:handshake:"
  "deflate:deflate:"
  "protobuf:protobuf:"
  "json:json:"
  "http-api:http_api:"
  "config:config:"
)

usage() { sed -n '2,4p' "$0" | sed 's/^# *//' >&2; exit 2; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

seconds=""
runs=""
selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] && is_count "$2" || usage; runs="$2"; shift 2 ;;
    --seconds) [ $# -ge 2 ] && is_count "$2" || usage; seconds="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *)
      if is_count "$1" && [ ${#selected[@]} -eq 0 ] && [ -z "$seconds" ]; then seconds="$1"; else selected+=("$1"); fi
      shift ;;
  esac
done
[ -n "$runs" ] || seconds="${seconds:-60}"

known=()
for entry in "${TARGETS[@]}"; do known+=("${entry%%:*}"); done
for name in "${selected[@]}"; do
  [[ " ${known[*]} " == *" $name "* ]] || { echo "fuzz: no target $name (targets: ${known[*]})" >&2; exit 2; }
done
[ ${#selected[@]} -gt 0 ] || selected=("${known[@]}")

"$PY" -c "import atheris" 2>/dev/null || "$ROOT/.venv/bin/pip" install -q atheris
mkdir -p "$HERE/crashes" "$HERE/corpus"

stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
# A target's crashes, leaks, timeouts and out-of-memory inputs. Not its slow units: libFuzzer
# writes one for an input that took over 10 s, which on a shared machine is most often a run
# that waited for the CPU (replay it to tell: fuzzing/README.md).
artifacts() { find "$HERE/crashes" -name "$1-*" -not -name '*.log' -not -name "$1-slow-unit-*" | wc -l; }

# What was fuzzed: exec/s depends on how busy the machine was, so each row keeps the load too.
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src fuzzing ':!fuzzing/RESULTS.md' 2>/dev/null)" ]; then commit="$commit + local changes"; fi
bound="${runs:+$runs runs}"
[ -z "$seconds" ] || bound="${bound:+$bound, }${seconds} s"
results=(--results "$HERE/RESULTS.md" --bound "$bound" --commit "$commit"
  --machine "$(uname -sm), $(nproc) CPUs, Python $("$PY" -c 'import platform; print(platform.python_version())'), atheris $("$PY" -c 'import importlib.metadata as m; print(m.version("atheris"))')")

rc=0
for entry in "${TARGETS[@]}"; do
  IFS=: read -r name script env <<< "$entry"
  [[ " ${selected[*]} " == *" $name "* ]] || continue
  corpus="$HERE/corpus/$name"
  seeds="$HERE/seeds/$script"
  mkdir -p "$corpus"
  [ -d "$seeds" ] || { echo "fuzz: $name has no seeds folder $seeds" >&2; exit 2; }
  options=(-artifact_prefix="$HERE/crashes/$name-" -print_final_stats=1)
  [ -z "$runs" ] || options+=(-runs="$runs")
  [ -z "$seconds" ] || options+=(-max_total_time="$seconds")
  [ -f "$HERE/$script.dict" ] && options+=(-dict="$HERE/$script.dict")
  before=$(artifacts "$name")
  log="$HERE/crashes/$name.log"
  started=$(date -u +%Y-%m-%dT%H:%MZ)
  load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
  echo "fuzz: $name for $bound, log in $log" >&2
  "$PY" "$HERE/results.py" "${results[@]}" --target "$name" --started "$started" --load "$load" --status running
  start=$(date +%s)
  status=ok
  if ! (cd "$HERE" && env $env "$PY" "fuzz_$script.py" "$corpus" "$seeds" "${options[@]}" > "$log" 2>&1); then
    status=failed
    rc=1
  fi
  elapsed=$(( $(date +%s) - start ))
  crashes=$(( $(artifacts "$name") - before ))
  units=$(stat number_of_executed_units "$log")
  speed=$(stat average_exec_per_sec "$log")
  rss=$(stat peak_rss_mb "$log")
  # libFuzzer gives 0 exec/s for a run shorter than its first second.
  if [ "${speed:-0}" = 0 ] && [ "$elapsed" -gt 0 ]; then speed=$(( ${units:-0} / elapsed )); fi
  if [ "$status" = failed ]; then
    echo "fuzz: $name FOUND A CRASH (or failed to start), see $log" >&2
  fi
  echo "fuzz: $name ran ${units:-0} inputs in ${elapsed}s, ${speed:-0}/s, $crashes crashes" >&2
  "$PY" "$HERE/results.py" "${results[@]}" --target "$name" --started "$started" --load "$load" \
    --status "$status" --runs "${units:-0}" --seconds "$elapsed" --speed "${speed:-0}" --rss "${rss:-?}" --crashes "$crashes"
done
exit "$rc"
