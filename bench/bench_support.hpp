// Shared pieces of the benchmarks: the real projection shapes of the Bi-Mamba configs, inputs rotated over
// more memory than the last-level cache, random data, and validation against ops/reference before timing.
//
// Shapes (Mamba-2, expand 2, d_state N = 128, G = 1 group, headdim 64, so E = 2 D, H = E / 64):
//   in_proj  (2 E + 2 G N + H) x D      out_proj  D x E
// Rotation: a benchmark holds `copies` independent copies of its weights, enough that together they exceed
// rotate_bytes() (3x the last-level cache the OS reports), and uses the next copy each iteration, so every
// iteration streams its weights from DRAM.
#pragma once

#include <benchmark/benchmark.h>

#include <bimamba/core/cpu.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace bimamba::bench {

inline int64_t rotate_bytes() {
  static const int64_t bytes = 3 * last_level_cache_bytes();
  return bytes;
}

struct Shape {
  const char* model;
  const char* proj;
  int64_t out, in;
};

inline std::vector<Shape> bimamba_shapes() {
  std::vector<Shape> shapes;
  const std::pair<const char*, int64_t> models[] = {{"780M", 1536}, {"1.3B", 2048}, {"2.7B", 2560}};
  for (auto [name, D] : models) {
    const int64_t E = 2 * D, N = 128, G = 1, H = E / 64;
    shapes.push_back({name, "in_proj", 2 * E + 2 * G * N + H, D});
    shapes.push_back({name, "out_proj", D, E});
  }
  return shapes;
}

inline int64_t rotation_copies(int64_t bytes_per_copy) {
  return std::max<int64_t>(1, (rotate_bytes() + bytes_per_copy - 1) / std::max<int64_t>(1, bytes_per_copy));
}

// Deterministic uniform floats in [lo, hi) (xorshift; fast enough for hundreds of MB).
inline void fill_uniform(float* p, size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = lo + (hi - lo) * float(s >> 40) * (1.0f / float(1 << 24));
  }
}

inline void fill_words(uint32_t* p, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = uint32_t(s >> 32);
  }
}

}  // namespace bimamba::bench
