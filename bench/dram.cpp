// BM_dram_read/threads:N: the machine's DRAM read bandwidth, the physical limit the GEMV benchmarks are
// compared with in the same run. Streams a buffer with 32-byte loads summed into four
// independent accumulators (no stores), over 1 thread or all of the Context's threads (each its own
// contiguous slice). bytes_per_second is the read bandwidth. The buffer is max(512 MiB, 4x the last-level
// cache).
#include <bimamba/core/context.hpp>
#include <bimamba/core/cpu.hpp>
#include <bimamba/core/memory.hpp>

#include <algorithm>
#include <cstring>
#include <memory>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "bench_support.hpp"

namespace bimamba::bench {
namespace {

size_t buffer_bytes() {
  return size_t(std::max<int64_t>(int64_t(512) << 20, 4 * last_level_cache_bytes())) / 128 * 128;
}

// Sum of the 64-bit words of [p, p + bytes) (bytes a multiple of 128), read once.
uint64_t read_stream(const char* p, size_t bytes) {
#if defined(__AVX2__)
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i < bytes; i += 128) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
#else
  uint64_t s[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < bytes; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      s[k] += w;
    }
  return s[0] + s[1] + s[2] + s[3];
#endif
}

void dram_read(benchmark::State& state, int threads) {
  Context<Host> ctx(threads);
  const size_t bytes = buffer_bytes();
  std::unique_ptr<char, void (*)(void*)> buffer(static_cast<char*>(MemoryOps<Host>::allocate(bytes)),
                                                MemoryOps<Host>::deallocate);
  const int64_t lines = int64_t(bytes / 128);
  ctx.parallel_for(lines, [&](int64_t begin, int64_t end) {  // first touch by the thread that reads it
    std::memset(buffer.get() + begin * 128, 1, size_t(end - begin) * 128);
  });
  for (auto _ : state) {
    uint64_t sums[64] = {};
    ctx.parallel_for(lines, [&](int64_t begin, int64_t end) {
      sums[begin * 64 / lines] = read_stream(buffer.get() + begin * 128, size_t(end - begin) * 128);
    });
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  state.counters["threads"] = ctx.threads();
}

}  // namespace

void register_dram_benchmarks() {
  benchmark::RegisterBenchmark("BM_dram_read/threads:1", dram_read, 1)->Unit(benchmark::kMillisecond)->UseRealTime();
  const int all = Context<Host>(0).threads();
  if (all > 1)
    benchmark::RegisterBenchmark(("BM_dram_read/threads:" + std::to_string(all)).c_str(), dram_read, all)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace bimamba::bench
