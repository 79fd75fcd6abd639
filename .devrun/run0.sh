#!/usr/bin/env bash
set -u
export LD_LIBRARY_PATH=$PWD/.devrun/bin BIMAMBA_SOURCE_DIR=$PWD
L=$OUT/logs; mkdir -p $L
timeout 300 .devrun/bin/bench_cuda_decode --benchmark_filter='graph|prefill' > $L/decode.log 2>&1; echo "decode rc=$?"
grep -E "BM_|rror" $L/decode.log | sed 's/  */ /g'
timeout 150 /usr/local/cuda/bin/ncu --metrics gpu__time_duration.sum --launch-skip 3000 -c 30 .devrun/bin/bench_cuda_decode --benchmark_filter='eager/bimamba-2.7b/B1$' > $L/ncu.log 2>&1; echo "ncu rc=$?"
grep -E "^  [a-zA-Z_].*\(|gpu__time_duration" $L/ncu.log | paste - - | awk '{print $1, $(NF)}' | cut -c1-150 | head -40
tar czf $OUT/logs.tgz -C $OUT logs
