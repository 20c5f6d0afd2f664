#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzzing/run.sh [SECONDS per target, default 60].
# Crashes are written to fuzzing/crashes/; each one must become a regression test in
# tests/fuzzing/. The summary of the run (inputs executed per target) goes to fuzzing/RESULTS.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SECONDS_PER_TARGET="${1:-60}"
"$PY" -c "import atheris" 2>/dev/null || "$ROOT/.venv/bin/pip" install -q atheris
mkdir -p "$HERE/crashes" "$HERE/corpus"

# name:script:environment. frames-pure parses with the pure Python twins of the C speedups,
# which atheris instruments; frames runs the C parser that serves by default.
TARGETS=(
  "frames:frames:"
  "frames-pure:frames:WAVECAST_NO_SPEEDUPS=1"
  "handshake:handshake:"
  "deflate:deflate:"
  "protobuf:protobuf:"
)

stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

# What was fuzzed, and how busy the machine was: exec/s depends on it.
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src fuzzing ':!fuzzing/RESULTS.md' 2>/dev/null)" ]; then commit="$commit + local changes"; fi
started=$(date -u +%Y-%m-%dT%H:%MZ)
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

rows=()
rc=0
for entry in "${TARGETS[@]}"; do
  IFS=: read -r name script env <<< "$entry"
  corpus="$HERE/corpus/$name"
  seeds="$HERE/seeds/$script"
  mkdir -p "$corpus"
  [ -d "$seeds" ] || { echo "fuzz: $name has no seeds folder $seeds" >&2; exit 2; }
  options=(-max_total_time="$SECONDS_PER_TARGET" -artifact_prefix="$HERE/crashes/$name-" -print_final_stats=1)
  [ -f "$HERE/$script.dict" ] && options+=(-dict="$HERE/$script.dict")
  before=$(find "$HERE/crashes" -name "$name-*" | wc -l)
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s" >&2
  log="$HERE/crashes/$name.log"
  status=ok
  if ! (cd "$HERE" && env $env "$PY" "fuzz_$script.py" "$corpus" "$seeds" "${options[@]}" > "$log" 2>&1); then
    status=failed
    rc=1
  fi
  crashes=$(( $(find "$HERE/crashes" -name "$name-*" | wc -l) - before ))
  units=$(stat number_of_executed_units "$log")
  speed=$(stat average_exec_per_sec "$log")
  rss=$(stat peak_rss_mb "$log")
  if [ "$status" = failed ]; then
    echo "fuzz: $name FOUND A CRASH (or failed to start), see $log" >&2
  fi
  echo "fuzz: $name ran ${units:-0} inputs, ${speed:-0}/s, $crashes crashes" >&2
  rows+=("| $name | $SECONDS_PER_TARGET | ${units:-0} | ${speed:-0} | ${rss:-?} | $crashes | $status |")
done

{
  echo "# Fuzzing results"
  echo
  echo "The last run of \`fuzzing/run.sh $SECONDS_PER_TARGET\` (\`FUZZ_SECONDS=$SECONDS_PER_TARGET make fuzz\`), written by the script."
  echo
  echo "- started: $started, on commit $commit"
  echo "- machine: $(uname -sm), $(nproc) CPUs (load average $load at the start), Python $("$PY" -c 'import platform; print(platform.python_version())'), atheris $("$PY" -c 'import importlib.metadata as m; print(m.version("atheris"))')"
  echo
  echo "| target | seconds | executed units | exec/s | peak RSS (MB) | crashes | result |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Each target starts from its seeds (\`fuzzing/seeds/\`, written by \`fuzzing/make_seeds.py\`) and the"
  echo "corpus of earlier runs (\`fuzzing/corpus/\`, not committed). Every crash becomes a regression test in"
  echo "\`tests/fuzzing/\`."
} > "$HERE/RESULTS.md"
exit "$rc"
