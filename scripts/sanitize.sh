#!/usr/bin/env bash
# Builds the host test suite with AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) in its own
# build directory and runs the same tests as scripts/test.sh (ctest -E Slow). .ci/run runs it after
# scripts/test.sh. Any sanitizer report aborts the test that hit it (-fno-sanitize-recover=all,
# halt_on_error), so the script fails on the first report.
#
# What is built: the test_<area> executables and the CLI (tests run it); not CUDA, benchmarks or the
# example training loop. -O1 keeps the build and the run affordable on a 2-core CI machine. Left out of the
# run: the Slow tests (as in scripts/test.sh) and the consumer.* packaging tests (they configure and build
# a separate project with its own flags; scripts/test.sh runs them).
#
# The sanitizer runtimes come with the compiler's Debian development package (libgcc-<major>-dev for GCC:
# libasan, libubsan); when a sanitized test program does not link, the script installs it (as root) or
# prints the apt-get command.
#
#   scripts/sanitize.sh            every test area (what .ci/run runs)
#   scripts/sanitize.sh io train   only test_io and test_train (the CLI too for cli, decode, trainer)
#
#   BIMAMBA_ASAN_BUILD_DIR  build directory (default build-asan)
#   BIMAMBA_JOBS            parallel compile / test jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BIMAMBA_ASAN_BUILD_DIR:-build-asan}
jobs=${BIMAMBA_JOBS:-2}
sanitize="-fsanitize=address,undefined"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int main() { return 0; }' >"$probe/probe.cpp"
if ! c++ $sanitize "$probe/probe.cpp" -o "$probe/probe" 2>/dev/null; then
  package="libgcc-$(c++ -dumpversion | cut -d. -f1)-dev"
  if [ "$(id -u)" -eq 0 ]; then
    echo "sanitize: the sanitizer runtimes are missing; installing $package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$package" >&2
  else
    echo "sanitize: the sanitizer runtimes are missing; run: sudo apt-get install -y $package" >&2
    exit 1
  fi
fi

launcher=()
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
flags="-O1 -g1 -fno-omit-frame-pointer $sanitize -fno-sanitize-recover=all"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DBIMAMBA_ENABLE_CUDA=OFF -DBIMAMBA_BUILD_BENCHMARKS=OFF -DBIMAMBA_BUILD_EXAMPLES=ON \
  -DCMAKE_CXX_FLAGS_RELEASE="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize"
# The test executables: one per folder of tests/ with .cpp files, as tests/CMakeLists.txt makes them (or
# the areas named); each area's tests carry its name as a ctest label.
areas=("$@")
select=()
if [ ${#areas[@]} -gt 0 ]; then
  select=(-L "$(IFS='|'; echo "^(${areas[*]})\$")")
else
  for dir in tests/*/; do
    area=$(basename "$dir")
    case $area in data | common | consumer) continue ;; esac
    compgen -G "$dir*.cpp" >/dev/null && areas+=("$area")
  done
fi
targets=()
for area in "${areas[@]}"; do
  targets+=("test_$area")
  case $area in cli | decode | trainer) targets+=(bimamba_cli) ;; esac
done
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs" -E 'Slow|^consumer\.' "${select[@]}"
