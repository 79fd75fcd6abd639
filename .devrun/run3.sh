#!/usr/bin/env bash
set -u
export LD_LIBRARY_PATH=$PWD/.devrun/bin BIMAMBA_SOURCE_DIR=$PWD
L=$OUT/logs; mkdir -p $L
t=test_ops_cuda_cuda
timeout 200 .devrun/bin/$t > $L/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $L/$t.log | tr '\n' ' ')"
grep -E '^\[  FAILED|Failure|Expected|actual|Which is|rror' $L/$t.log | head -20
timeout 200 /usr/local/cuda/bin/ncu --metrics gpu__time_duration.sum -k regex:mamba2_decode -c 3 .devrun/bin/$t --gtest_filter='*Fused*' > $L/ncu.log 2>&1
grep -E "mamba2_decode_kernel|gpu__time_duration" $L/ncu.log | cut -c1-90
