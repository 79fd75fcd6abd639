// What `bimamba bench decode` and `bimamba bench gemv` share:
//   dram_read_gbps(ctx)   the machine's DRAM read bandwidth with ctx's threads: each thread sums its own slice
//                         of a buffer of max(512 MiB, 4x the last-level cache), 4 interleaved sequential
//                         streams per thread (as bench/dram.cpp), no stores; best of `passes` passes, GB/s
//   seconds_since(t0)     wall-clock seconds
#pragma once

#include <bimamba/core/context.hpp>
#include <bimamba/core/cpu.hpp>
#include <bimamba/core/memory.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace bimamba::cli {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double dram_read_gbps(Context<Host>& ctx, int passes = 5) {
  constexpr int64_t kLine = 64, kStreams = 4;
  const int64_t bytes = std::max<int64_t>(int64_t(512) << 20, 4 * last_level_cache_bytes()) / 4096 * 4096;
  std::unique_ptr<char, void (*)(void*)> buffer(static_cast<char*>(MemoryOps<Host>::allocate(size_t(bytes))),
                                                MemoryOps<Host>::deallocate);
  const int workers = ctx.threads();
  const int64_t lines = bytes / kLine / workers / kStreams * kStreams;  // per worker
  auto slice = [&](int64_t w) { return buffer.get() + w * lines * kLine; };
  ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {  // first touch by the thread that reads it
    for (int64_t w = begin; w < end; ++w) std::memset(slice(w), 1, size_t(lines * kLine));
  });
  std::vector<uint64_t> sums(static_cast<size_t>(workers));
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const auto* p = reinterpret_cast<const uint64_t*>(slice(w));
        const int64_t part = lines / kStreams * (kLine / 8);  // words per stream
        uint64_t acc[kStreams][8] = {};
        for (int64_t i = 0; i < part; i += kLine / 8)
          for (int64_t s = 0; s < kStreams; ++s)
            for (int k = 0; k < 8; ++k) acc[s][k] += p[s * part + i + k];
        uint64_t total = 0;
        for (auto& a : acc)
          for (uint64_t v : a) total += v;
        sums[size_t(w)] = total;
      }
    });
    best = std::max(best, double(lines * kLine * workers) / seconds_since(t0) / 1e9);
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  return best;
}

}  // namespace bimamba::cli
