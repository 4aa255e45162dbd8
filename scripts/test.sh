#!/usr/bin/env bash
# One command from a fresh machine to every test passing: installs the dependencies (Debian
# packages, then the browser tests' npm packages), then
#   normal  builds build/ (warnings are errors) and runs every test, all labels;
#   asan    builds build-asan/ (ASan + UBSan) and runs every test but the browser ones
#           (those run once, in the normal build, to stay within the CI time budget), the
#           servers logging JSON (log.format: json): a test fails if any line of its server's
#           log is not one JSON object;
#   fuzz    builds the libFuzzer targets with clang and runs each (ctest label fuzz) for a
#           bounded time (CALLRELAY_FUZZ_SECONDS, default 45) from tests/fuzz/corpus.
# Prints a summary and exits non-zero if any step failed.
# Usage: scripts/test.sh [--skip-deps] [normal] [asan] [fuzz]   (no stage named: all three)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

skip_deps=0
stages=()
for arg in "$@"; do
  case "$arg" in
    --skip-deps) skip_deps=1 ;;
    normal | asan | fuzz) stages+=("$arg") ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ ${#stages[@]} -gt 0 ]] || stages=(normal asan fuzz)
wants() { [[ " ${stages[*]} " == *" $1 "* ]]; }

jobs=$(nproc)
# 45 s per target keeps the whole of CI near half an hour on 2 CPUs: in CI the fuzz stage
# replays the seed corpora and explores briefly; search for longer with CALLRELAY_FUZZ_SECONDS.
fuzz_seconds=${CALLRELAY_FUZZ_SECONDS:-45}
export CALLRELAY_FUZZ_SECONDS=$fuzz_seconds  # read by build.sh fuzz
# Sanitizer findings fail the test that hit them, with a stack trace.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

results=()
failures=0
started=$SECONDS

record() {  # record PASS|FAIL|SKIP NAME SECONDS
  results+=("$(printf '%-4s  %-46s %5s s' "$1" "$2" "$3")")
  [[ $1 == PASS ]] || failures=$((failures + 1))
}

# step NAME COMMAND...: runs one command, records its outcome; returns its status.
step() {
  local name=$1 start=$SECONDS
  shift
  echo
  echo "=== $name"
  if "$@"; then
    record PASS "$name" $((SECONDS - start))
  else
    record FAIL "$name" $((SECONDS - start))
    return 1
  fi
}

# The tests a failed ctest run in $1 names, with the end of each one's output, kept for the
# summary: a CI log is often read from its tail, far below where ctest printed the output.
failed_details=()
note_failed_tests() {
  local dir=$1 list=$1/Testing/Temporary/LastTestsFailed.log name
  [[ -f $list ]] || return 0
  while IFS= read -r name; do
    name=${name#*:}
    failed_details+=("--- $dir: $name (last 30 lines of its output)")
    mapfile -t -O "${#failed_details[@]}" failed_details < <(
      awk -v t="$name" '
        $0 ~ /^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); mine = ($0 == t) }
        mine && /^<end of output>$/ { mine = 0; out = 0 }
        mine && out { print }
        mine && /^Output:$/ { getline; out = 1 }
      ' "$dir"/Testing/Temporary/LastTest*.log 2>/dev/null | tail -n 30)
  done < "$list"
}

summary() {
  echo
  if [[ ${#failed_details[@]} -gt 0 ]]; then
    echo "========================= failed tests ================================"
    printf '%s\n' "${failed_details[@]}"
  fi
  echo "======================= callrelay test summary ========================"
  printf '%s\n' "${results[@]}"
  echo "-----------------------------------------------------------------------"
  if [[ $failures == 0 ]]; then
    echo "ALL ${#results[@]} STEPS PASSED in $((SECONDS - started)) s"
  else
    echo "$failures OF ${#results[@]} STEPS FAILED (total $((SECONDS - started)) s)"
  fi
}

# ctest over one build dir. Unit tests run in parallel, one per CPU; so do the rest (real
# binaries and clients), two per CPU: each starts its own servers on free ports in a directory
# of its own, and most of their time is spent waiting on timers and peers (the CPUs were busy
# about a fifth of the time at one per CPU). The browser tests count as two each
# (tests/integration/CMakeLists.txt). $2: label regex the second run excludes (always unit,
# which already ran).
run_ctest() {
  local dir=$1 exclude=$2
  step "$dir: ctest -L unit" ctest --test-dir "$dir" --output-on-failure --no-tests=error \
    -L unit -j "$jobs" --timeout 300 || note_failed_tests "$dir"
  step "$dir: ctest -LE '$exclude'" ctest --test-dir "$dir" --output-on-failure \
    --no-tests=error -LE "$exclude" -j "$((2 * jobs))" --timeout 600 || note_failed_tests "$dir"
}

if [[ $skip_deps == 0 ]]; then
  if ! step "install Debian packages" bash scripts/install-deps.sh; then
    summary
    exit 1
  fi
fi
if [[ -f tests/integration/browser/package-lock.json ]]; then
  step "npm ci (tests/integration/browser/)" npm ci --prefix tests/integration/browser \
    --no-audit --no-fund || true
fi

# Line tables only (-g1) in both builds: backtraces and the sanitizers' reports keep function,
# file and line, while the variable locations of full -g (read by debuggers, never by CI) cost
# about a third of the compile time of a test source.
if wants normal; then
  if step "build (normal, -Werror)" bash scripts/build.sh normal \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"; then
    run_ctest build 'unit'
  else
    record SKIP "build: tests (build failed)" 0
  fi
fi
if wants asan; then
  if step "build (ASan + UBSan)" bash scripts/build.sh asan "-DCMAKE_CXX_FLAGS_DEBUG=-g1 -O1" \
    "-DCMAKE_C_FLAGS_DEBUG=-g1 -O1"; then
    # Read by the integration harnesses when they write the servers' configs.
    export CALLRELAY_TEST_LOG_FORMAT=json
    run_ctest build-asan 'unit|browser'
    unset CALLRELAY_TEST_LOG_FORMAT
  else
    record SKIP "build-asan: tests (build failed)" 0
  fi
fi
if wants fuzz; then
  if step "build (fuzz targets, clang)" bash scripts/build.sh fuzz; then
    # Each target runs CALLRELAY_FUZZ_SECONDS (set at configure time by build.sh), in parallel.
    step "build-fuzz: ctest -L fuzz (${fuzz_seconds} s each)" ctest --test-dir build-fuzz \
      --output-on-failure --no-tests=error -L fuzz -j "$jobs" || note_failed_tests build-fuzz
  else
    record SKIP "fuzz runs (build failed)" 0
  fi
fi

summary
[[ $failures == 0 ]]
