#!/usr/bin/env bash
# Builds and runs tests/consumer/project against bimamba in one consumption mode.
# usage: check_consumer.sh MODE SOURCE_DIR BUILD_DIR WORK_DIR CUDA(ON|OFF)
set -euo pipefail
mode=$1 source=$2 build=$3 work=$4 cuda=$5
rm -rf "$work" && mkdir -p "$work"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
extra=()
if [ "$mode" = package ]; then
  cmake --install "$build" --prefix "$work/prefix" >/dev/null
  extra=(-DCMAKE_PREFIX_PATH="$work/prefix")
fi
cuda_args=()
[ "$cuda" = ON ] && cuda_args=(-DCMAKE_CUDA_ARCHITECTURES=90)
cmake -S "$source/tests/consumer/project" -B "$work/build" -DBIMAMBA_CONSUME="$mode" -DBIMAMBA_SOURCE="$source" \
  -DCONSUMER_CUDA="$cuda" "${cuda_args[@]}" "${launcher[@]}" "${extra[@]}"
cmake --build "$work/build" -j 2
"$work/build/consumer_host"
if [ "$cuda" = ON ]; then "$work/build/consumer_cuda"; fi
