// What the host CPU offers, for benchmarks, logs and size heuristics:
//   simd_path()              the SIMD kernels this translation unit was compiled for ("avx512bw", "avx2",
//                            "scalar"): the host kernels are chosen at compile time
//   last_level_cache_bytes() the largest data cache the OS reports (Linux sysfs / sysconf), 32 MiB when unknown
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>

#if defined(__unix__)
#include <unistd.h>
#endif

namespace bimamba {

inline const char* simd_path() {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  return "avx512bw";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "scalar";
#endif
}

inline int64_t last_level_cache_bytes() {
  int64_t best = 0;
  for (int index = 0; index < 8; ++index) {  // Linux: /sys/devices/system/cpu/cpu0/cache/index<i>/size, "32768K"
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    std::string text;
    if (!(in >> text) || text.empty()) continue;
    int64_t value = 0;
    size_t k = 0;
    for (; k < text.size() && text[k] >= '0' && text[k] <= '9'; ++k) value = value * 10 + (text[k] - '0');
    const char unit = k < text.size() ? text[k] : ' ';
    value *= unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : unit == 'G' ? int64_t(1) << 30 : 1;
    if (value > best) best = value;
  }
#if defined(_SC_LEVEL3_CACHE_SIZE)
  if (best == 0) best = std::max<int64_t>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
#endif
  return best > 0 ? best : int64_t(32) << 20;
}

}  // namespace bimamba
