// Entry point of bench_kernels: registers the shape-dependent benchmarks, then runs Google Benchmark.
#include <benchmark/benchmark.h>

namespace bimamba::bench {
void register_dram_benchmarks();
void register_binary_linear_benchmarks();
void register_dense_gemv_benchmarks();
void register_ssd_benchmarks();
}  // namespace bimamba::bench

int main(int argc, char** argv) {
  bimamba::bench::register_dram_benchmarks();
  bimamba::bench::register_binary_linear_benchmarks();
  bimamba::bench::register_dense_gemv_benchmarks();
  bimamba::bench::register_ssd_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
