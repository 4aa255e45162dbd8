#!/usr/bin/env bash
# Configures and builds callrelay in one of three flavours, each in its own directory:
#   normal  build/       RelWithDebInfo, warnings are errors (the default)
#   asan    build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, whole test suite
#   fuzz    build-fuzz/  clang, only the libFuzzer targets (the ctest tests labelled fuzz, each
#                        running CALLRELAY_FUZZ_SECONDS, default 45)
# Usage: scripts/build.sh [normal|asan|fuzz] [extra cmake -D options...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-normal}
shift || true
jobs=$(nproc)

case "$mode" in
  normal)
    dir=build
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLRELAY_WARNINGS_AS_ERRORS=ON)
    targets=()
    ;;
  asan)
    # -O1: fast enough for the integration tests, still precise stack traces. Warnings are not
    # errors here: GCC's sanitizer instrumentation raises false positives the normal build
    # does not (the normal build enforces warnings).
    dir=build-asan
    args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" "-DCMAKE_C_FLAGS_DEBUG=-g -O1"
          -DCALLRELAY_SANITIZE=ON -DCALLRELAY_BUILD_BENCH=OFF)
    targets=()
    ;;
  fuzz)
    dir=build-fuzz
    export CC=clang CXX=clang++
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLRELAY_FUZZ=ON -DCALLRELAY_BUILD_BENCH=OFF
          "-DCALLRELAY_FUZZ_SECONDS=${CALLRELAY_FUZZ_SECONDS:-45}")
    targets=()  # the fuzz tests' executables, listed after configuring
    ;;
  -h | --help)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "build.sh: unknown mode '$mode' (normal, asan or fuzz)" >&2
    exit 2
    ;;
esac

echo "== build.sh $mode: $root/$dir"
cmake -S "$root" -B "$root/$dir" "${args[@]}" "$@"
if [[ $mode == fuzz ]]; then
  # Each fuzz test is named after its target (tests/fuzz/CMakeLists.txt).
  mapfile -t targets < <(ctest --test-dir "$root/$dir" -L fuzz -N | awk '/Test +#/ {print $3}')
  if [[ ${#targets[@]} == 0 ]]; then
    echo "build.sh: no fuzz targets configured (is clang installed?)" >&2
    exit 1
  fi
fi
if [[ ${#targets[@]} == 0 ]]; then
  cmake --build "$root/$dir" -j "$jobs"
else
  cmake --build "$root/$dir" -j "$jobs" --target "${targets[@]}"
fi
