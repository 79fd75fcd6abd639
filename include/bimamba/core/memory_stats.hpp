// Process memory statistics for benchmarks (Linux: /proc/self/status; elsewhere 0 = unknown).
//   peak_rss_bytes()     VmHWM: the largest resident set of this process so far
//   current_rss_bytes()  VmRSS: the resident set now
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace bimamba {

namespace detail {
// The value of a "Key:   1234 kB" line of /proc/self/status in bytes, 0 when absent.
inline int64_t proc_status_kib_field(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':')
      return std::stoll(line.substr(key.size() + 1)) * 1024;
  return 0;
}
}  // namespace detail

inline int64_t peak_rss_bytes() { return detail::proc_status_kib_field("VmHWM"); }
inline int64_t current_rss_bytes() { return detail::proc_status_kib_field("VmRSS"); }

}  // namespace bimamba
