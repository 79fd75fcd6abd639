// BM_dram_read/streams:S/threads:N: the machine's DRAM read bandwidth, the physical limit the GEMV benchmarks
// are compared with in the same run. Each thread reads its own contiguous slice of a buffer of
// max(512 MiB, 4x the last-level cache) once per iteration, as S interleaved sequential streams (the slice
// cut in S parts, one 64-byte line of each part per step) summed into independent accumulators, no stores.
// One stream measures what a single sequential walk gets from the prefetchers; 8 streams keep more misses in
// flight, which a single core needs to approach the DRAM limit (row-parallel fp32 GEMV does this naturally).
// bench/report.py takes the best of the stream counts as the bandwidth for each thread count.
#include <bimamba/core/context.hpp>
#include <bimamba/core/cpu.hpp>
#include <bimamba/core/memory.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "bench_support.hpp"

namespace bimamba::bench {
namespace {

constexpr int64_t kLine = 64;

size_t buffer_bytes() {
  return size_t(std::max<int64_t>(int64_t(512) << 20, 4 * last_level_cache_bytes())) / 4096 * 4096;
}

// Sum of the 64-bit words of [p, p + lines * 64), read as S interleaved streams (lines a multiple of S).
template <int S>
uint64_t read_streams(const char* p, int64_t lines) {
  const int64_t part = lines / S * kLine;
#if defined(__AVX2__)
  __m256i acc[S];
  for (int s = 0; s < S; ++s) acc[s] = _mm256_setzero_si256();
  for (int64_t i = 0; i < part; i += kLine)
    for (int s = 0; s < S; ++s) {
      const char* q = p + s * part + i;
      acc[s] = _mm256_add_epi64(acc[s], _mm256_add_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(q)),
                                                         _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32))));
    }
  alignas(32) uint64_t lanes[4];
  uint64_t total = 0;
  for (int s = 0; s < S; ++s) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[s]);
    total += lanes[0] + lanes[1] + lanes[2] + lanes[3];
  }
  return total;
#else
  uint64_t acc[S] = {};
  for (int64_t i = 0; i < part; i += kLine)
    for (int s = 0; s < S; ++s)
      for (int k = 0; k < 8; ++k) {
        uint64_t w;
        std::memcpy(&w, p + s * part + i + 8 * k, 8);
        acc[s] += w;
      }
  uint64_t total = 0;
  for (int s = 0; s < S; ++s) total += acc[s];
  return total;
#endif
}

template <int S>
void dram_read(benchmark::State& state, int threads) {
  Context<Host> ctx(threads);
  const size_t bytes = buffer_bytes();
  std::unique_ptr<char, void (*)(void*)> buffer(static_cast<char*>(MemoryOps<Host>::allocate(bytes)),
                                                MemoryOps<Host>::deallocate);
  const int workers = ctx.threads();
  const int64_t lines_per_worker = int64_t(bytes) / kLine / workers / S * S;
  auto slice = [&](int64_t w) { return buffer.get() + w * lines_per_worker * kLine; };
  ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {  // first touch by the thread that reads it
    for (int64_t w = begin; w < end; ++w) std::memset(slice(w), 1, size_t(lines_per_worker * kLine));
  });
  for (auto _ : state) {
    uint64_t sums[256] = {};
    ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) sums[w % 256] = read_streams<S>(slice(w), lines_per_worker);
    });
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * lines_per_worker * workers * kLine);
  state.counters["threads"] = workers;
  state.counters["streams"] = S;
}

}  // namespace

void register_dram_benchmarks() {
  std::vector<int> thread_counts = {1};
  if (const int all = Context<Host>(0).threads(); all > 1) thread_counts.push_back(all);
  for (int threads : thread_counts) {
    const std::string suffix = "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(("BM_dram_read/streams:1" + suffix).c_str(), dram_read<1>, threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_dram_read/streams:8" + suffix).c_str(), dram_read<8>, threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace bimamba::bench
