// The main() of the Cuda benchmarks: Google Benchmark's, except that on a machine without a CUDA device it
// prints one line and succeeds (CI builds these benchmarks and has no GPU).
#pragma once

#include <benchmark/benchmark.h>

#include <bimamba/core/cuda_runtime.hpp>
#include <cstdio>

namespace bimamba::bench_cuda {

inline int run_benchmarks(int argc, char** argv, const char* name) {
  benchmark::Initialize(&argc, argv);
  if (!cuda_device_available()) {
    std::fprintf(stderr, "%s: no CUDA device\n", name);
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bimamba::bench_cuda
