// What the Cuda benchmarks share: their main() (Google Benchmark's, except that on a machine without a CUDA device
// it prints one line and succeeds: CI builds these benchmarks and has no GPU) and their random inputs.
#pragma once

#include <benchmark/benchmark.h>

#include <bimamba/core/cuda_runtime.hpp>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace bimamba::bench_cuda {

// n floats uniform in [lo, hi) from std::mt19937_64 seeded with seed.
inline std::vector<float> uniform(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

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
