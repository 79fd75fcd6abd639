#!/usr/bin/env bash
# The main job: builds the project and runs its examples end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BIMAMBA_BUILD_DIR:-build}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >&2
cmake --build "$build" -j "${BIMAMBA_JOBS:-2}" >&2
for example in "$build"/bin/example_*; do
  [ -x "$example" ] || continue
  echo "== $(basename "$example")" >&2
  "$example"
done
