// Reference time-step activation in double: out = clamp(log(1 + exp(dt + bias)), lo, hi), (T, H) row-major.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> dt_softplus(const std::vector<double>& dt, const std::vector<double>& bias, int64_t T,
                                       int64_t H, double lo, double hi) {
  std::vector<double> out(size_t(T * H));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const double u = dt[size_t(t * H + h)] + (bias.empty() ? 0.0 : bias[size_t(h)]);
      out[size_t(t * H + h)] = std::min(hi, std::max(lo, std::log1p(std::exp(u))));
    }
  return out;
}

}  // namespace bimamba::reference
