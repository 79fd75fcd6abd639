#!/usr/bin/env bash
set -u
export LD_LIBRARY_PATH=$PWD/.devrun/bin BIMAMBA_SOURCE_DIR=$PWD
L=$OUT/logs; mkdir -p $L
for t in test_ops_cuda_cuda test_model_cuda_cuda; do
  [ -x .devrun/bin/$t ] || { echo "$t missing"; continue; }
  timeout 200 .devrun/bin/$t > $L/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $L/$t.log | tr '\n' ' ')"
  grep -E '^\[  FAILED|Failure|Expected|actual|Which is|rror' $L/$t.log | head -20
done
timeout 200 /usr/local/cuda/bin/ncu --metrics gpu__time_duration.sum --launch-skip 3000 -c 30 .devrun/bin/bench_cuda_decode --benchmark_filter='eager/bimamba-2.7b/B1/' > $L/ncu.log 2>&1; echo "ncu rc=$?"
grep -E "^  [a-zA-Z_].*\(|gpu__time_duration" $L/ncu.log | cut -c1-110 | paste - - | awk '{print $1, $NF}' | head -40
tar czf $OUT/logs.tgz -C $OUT logs
