#!/usr/bin/env bash
# Builds the host test suite with AddressSanitizer + UndefinedBehaviorSanitizer in its own build directory
# (CUDA and benchmarks off; the CLI is built too, since tests run it; -O1, ccache when present) and runs
# the same tests as scripts/test.sh
# (ctest -E Slow). Any sanitizer report aborts the test that hit it (-fno-sanitize-recover=all,
# halt_on_error), so the script fails on the first report.
#
#   BIMAMBA_ASAN_BUILD_DIR  build directory (default build-asan)
#   BIMAMBA_JOBS            parallel compile / test jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BIMAMBA_ASAN_BUILD_DIR:-build-asan}
jobs=${BIMAMBA_JOBS:-2}
launcher=()
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
flags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DBIMAMBA_ENABLE_CUDA=OFF -DBIMAMBA_BUILD_BENCHMARKS=OFF \
  -DCMAKE_CXX_FLAGS_RELEASE="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" -E Slow
