#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang-14 with ASan + UBSan) and runs each for a while.
# Not part of CI: run it by hand after changing a reader, and commit what it finds (below).
#
#   tools/fuzz.sh                       every target, 600 s each, one after the other
#   tools/fuzz.sh --seconds 60 npy csv  the named targets only, 60 s each
#   tools/fuzz.sh --jobs 2              two targets at a time
#   tools/fuzz.sh --build-only
#
# Targets: npy (load_npy_bytes), npz (load_npz_bytes), npy_rows (NpyRowReader), csv
# (parse_csv_table), image_csv (model::list_image_csv), zoo_manifest (model::parse_zoo_manifest),
# text (model::parse_texts: '<label> <text>' lines or a text,label CSV; the first byte picks).
# Seeds: tests/data/npy, tests/data/logme, the CSVs under tests/data, and the regression corpus
# tests/data/fuzz/<target>/ (the only seeds of zoo_manifest and text). The working
# corpus grows in build-fuzz/corpus/<target>/; crashes land in build-fuzz/crashes/<target>/ and
# each run's log in build-fuzz/logs/<target>.log.
# After a finding: fix it, copy the crashing input into tests/data/fuzz/<target>/ (the GoogleTests
# in tests/core/test_fuzz_corpus.cpp and tests/model/test_fuzz_corpus_image.cpp replay every file
# there), and optionally the few corpus files worth keeping (`-merge=1` into an empty folder
# keeps a minimal covering set).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=600
JOBS=1
BUILD_ONLY=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "tools/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(npy npz npy_rows csv image_csv zoo_manifest text)
BUILD=${TLKIT_FUZZ_BUILD_DIR:-build-fuzz}
CXX=${CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "tools/fuzz.sh: needs clang ($CXX not found)" >&2; exit 1; }

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" \
  -DTLKIT_BUILD_FUZZERS=ON -DTLKIT_WITH_TORCH=OFF -DTLKIT_BUILD_TESTS=OFF -DTLKIT_BUILD_CLI=OFF \
  -DTLKIT_BUILD_BENCHMARKS=OFF -DTLKIT_BUILD_PYTHON=OFF >/dev/null
cmake --build "$BUILD" -j "${TLKIT_JOBS:-$(nproc)}" --target "${TARGETS[@]/#/fuzz_}"
[ "$BUILD_ONLY" = 0 ] || exit 0

seeds_for() {
  case "$1" in
    npy|npy_rows) echo tests/data/npy tests/data/logme ;;
    npz) echo tests/data/npy ;;  # libFuzzer reads every file; the .npz ones are the useful seeds
    csv|image_csv) echo tests/data/correlation ;;
    zoo_manifest|text) ;;  # their seeds are in the regression corpus tests/data/fuzz/<target>/
  esac
}

run_one() {
  local t=$1 corpus="$BUILD/corpus/$1" crashes="$BUILD/crashes/$1" rc=0
  mkdir -p "$corpus" "$crashes" "$BUILD/logs"
  local dirs=("$corpus")
  [ -d "tests/data/fuzz/$t" ] && dirs+=("tests/data/fuzz/$t")
  # shellcheck disable=SC2046
  for d in $(seeds_for "$t"); do dirs+=("$d"); done
  # New inputs go to the first folder only (the working corpus), never into tests/data.
  TMPDIR=${TMPDIR:-/tmp} "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "${dirs[@]}" >"$BUILD/logs/$t.log" 2>&1 || rc=$?
  local stats
  stats=$(grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)" \
            "$BUILD/logs/$t.log" | sed 's/^stat:://' | tr '\n' ' ')
  echo "fuzz_$t: exit $rc; $stats; crashes: $(ls "$crashes" | wc -l) in $crashes"
  return $rc
}

rc=0
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || rc=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || rc=1
  running=$((running - 1))
done
exit $rc
