#!/usr/bin/env bash
# Builds everything (host; CUDA tests, examples and benchmarks too where nvcc exists, for one architecture)
# and runs the default test suite. Device tests skip at run time on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BIMAMBA_BUILD_DIR:-build}
launcher=()
# ccache keys on paths relative to the checkout, so fresh clones elsewhere reuse the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${BIMAMBA_CMAKE_ARGS:-}
cmake --build "$build" -j "${BIMAMBA_JOBS:-2}"
# Long checks (training runs, whole corpora) have "Slow" in their test name and are left out here;
# run them with: ctest --test-dir build -R Slow
ctest --test-dir "$build" --output-on-failure -j "${BIMAMBA_JOBS:-2}" -E Slow
