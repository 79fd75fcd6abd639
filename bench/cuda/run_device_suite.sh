#!/usr/bin/env bash
# Builds and runs the whole device test suite (every test_*_cuda target), the Cuda benchmarks and the HF
# peer on a GPU machine; logs and JSON go to $OUT (default ./device-out). Usage, from the repository root:
#   bench/cuda/run_device_suite.sh [prefix-path-of-dependencies] [tests|bench|decode|peer|profile ...]
# profile: Nsight Compute (ncu, clocks left alone) per-kernel times of the decode kernel at the 2.7B in_proj shape
# and of one eager 780M decode step, with the SM clock and DRAM bytes; the decode kernel's stall reasons and
# per-instruction samples (SASS, csv) (not part of the default steps).
# train: bench_cuda_train and ncu per-kernel times of the 780M L = 2048 bf16 batch-1 case (not a default step).
# Everything written ends up in $OUT/suite.tgz too (the device tool brings back at most 8 files).
# The CUDA architecture defaults to 90 (H200); set CUDA_ARCH to change it.
set -u -o pipefail
OUT=${OUT:-$PWD/device-out}
PREFIX=${1:-}
shift || true
STEPS=${*:-tests bench decode peer}
mkdir -p "$OUT"
BUILD=build-device
cmake -S . -B $BUILD -G Ninja ${PREFIX:+-DCMAKE_PREFIX_PATH=$PREFIX -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu} \
  -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90} -DBIMAMBA_BUILD_EXAMPLES=OFF -DBIMAMBA_BUILD_BENCHMARKS=ON \
  >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
targets=$(ninja -C $BUILD -t targets all 2>/dev/null | grep -oE '^test_[a-z_]+_cuda(_cuda)?:' | tr -d ':' | sort -u)
for step in $STEPS; do
  case $step in
    tests)
      cmake --build $BUILD -j"$(nproc)" --target $targets -- -k 0 >"$OUT/build_tests.log" 2>&1 ||
        grep -E "error|FAILED" "$OUT/build_tests.log" | head -40
      for t in $targets; do
        if [ -x $BUILD/tests/$t ]; then
          timeout 300 $BUILD/tests/$t --gtest_output=json:"$OUT/$t.json" >"$OUT/$t.log" 2>&1
          echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]|tests? ran' "$OUT/$t.log" | tr '\n' ' ')"
          grep -E '^\[  FAILED  \]' "$OUT/$t.log" | head -20
        else
          echo "$t NOT BUILT"
        fi
      done ;;
    bench)
      cmake --build $BUILD -j"$(nproc)" --target bench_cuda_gemv >"$OUT/build_bench.log" 2>&1 ||
        { grep -E "error" "$OUT/build_bench.log" | head -20; continue; }
      timeout 300 $BUILD/bin/bench_cuda_gemv --benchmark_out="$OUT/bench_cuda_gemv.json" --benchmark_out_format=json \
        2>&1 | tee "$OUT/bench_cuda_gemv.log" ;;
    decode)
      cmake --build $BUILD -j"$(nproc)" --target bench_cuda_decode >"$OUT/build_decode.log" 2>&1 ||
        { grep -E "error" "$OUT/build_decode.log" | head -20; continue; }
      timeout 500 $BUILD/bin/bench_cuda_decode --benchmark_out="$OUT/bench_cuda_decode.json" \
        --benchmark_out_format=json 2>&1 | tee "$OUT/bench_cuda_decode.log" ;;
    profile)
      cmake --build $BUILD -j"$(nproc)" --target bench_cuda_gemv bench_cuda_decode >"$OUT/build_profile.log" 2>&1 ||
        { grep -E "error" "$OUT/build_profile.log" | head -20; continue; }
      metrics=gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,dram__bytes_read.sum
      timeout 200 ncu --clock-control none -k regex:binary_gemv --launch-skip 20 --launch-count 4 --metrics $metrics \
        $BUILD/bin/bench_cuda_gemv --benchmark_filter='packed/2.7B/in_proj/10576x2560/T1' >"$OUT/ncu_gemv.log" 2>&1
      timeout 300 ncu --clock-control none --launch-skip 400 --launch-count 16 --metrics $metrics \
        $BUILD/bin/bench_cuda_decode --benchmark_filter='eager/bimamba-780m/B1/' >"$OUT/ncu_decode.log" 2>&1
      grep -E "^  [a-z_].*\(|duration|per_second" "$OUT/ncu_gemv.log" "$OUT/ncu_decode.log" | head -80
      stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum'
      timeout 200 ncu --clock-control none -k regex:binary_gemv --launch-skip 20 --launch-count 1 --metrics "$stalls" \
        $BUILD/bin/bench_cuda_gemv --benchmark_filter='packed/2.7B/in_proj/10576x2560/T1' >"$OUT/ncu_gemv_stalls.log" 2>&1
      timeout 200 ncu --clock-control none -k regex:binary_gemv --launch-skip 20 --launch-count 1 --section SourceCounters \
        -o "$OUT/gemv_src" $BUILD/bin/bench_cuda_gemv --benchmark_filter='packed/2.7B/in_proj/10576x2560/T1' >/dev/null 2>&1 &&
        ncu -i "$OUT/gemv_src.ncu-rep" --page source --csv --print-source sass >"$OUT/gemv_sass.csv" 2>&1
      rm -f "$OUT/gemv_src.ncu-rep" ;;
    train)
      cmake --build $BUILD -j"$(nproc)" --target bench_cuda_train >"$OUT/build_train.log" 2>&1 ||
        { grep -E "error" "$OUT/build_train.log" | head -20; continue; }
      timeout 300 $BUILD/bin/bench_cuda_train --benchmark_out="$OUT/bench_cuda_train.json" \
        --benchmark_out_format=json 2>&1 | tee "$OUT/bench_cuda_train.log"
      # Every kernel of the three steps of one case (warm-up + 2 timed) inside the bench's NVTX phases, summed
      # per kernel name: divide by 3 for one step.
      timeout 500 ncu --clock-control none --metrics gpu__time_duration.sum --nvtx --nvtx-include "forward/" \
        --nvtx-include "backward/" --nvtx-include "optimizer/" --print-summary per-kernel \
        $BUILD/bin/bench_cuda_train --benchmark_filter='L2048/B1/bf16' >"$OUT/ncu_train.log" 2>&1 ;;
    peer)
      timeout 400 python3 bench/peers/hf_mamba2_decode.py 2>&1 | tee "$OUT/hf_mamba2_decode.log" | grep -v Warning ;;
  esac
done
(cd "$OUT" && tar czf suite.tgz --exclude=suite.tgz . 2>/dev/null)
