// Reference RMSNorm and gated group-wise RMSNorm in double, row-major (T, D) / (T, E) arrays.
//   rms_norm:       y = x / sqrt(mean x^2 + eps) * w
//   gated_rms_norm: g = y * silu(z); out = g / sqrt(mean_group g^2 + eps) * w, groups of E / groups channels
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w, int64_t T, int64_t D,
                                    double eps) {
  std::vector<double> y(size_t(T * D));
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0;
    for (int64_t j = 0; j < D; ++j) sum += x[size_t(t * D + j)] * x[size_t(t * D + j)];
    const double scale = 1.0 / std::sqrt(sum / double(D) + eps);
    for (int64_t j = 0; j < D; ++j) y[size_t(t * D + j)] = x[size_t(t * D + j)] * scale * w[size_t(j)];
  }
  return y;
}

inline double silu(double v) { return v / (1.0 + std::exp(-v)); }

inline std::vector<double> gated_rms_norm(const std::vector<double>& y, const std::vector<double>& z,
                                          const std::vector<double>& w, int64_t T, int64_t E, int64_t groups,
                                          double eps) {
  const int64_t S = E / groups;
  std::vector<double> out(size_t(T * E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0;
      for (int64_t j = g * S; j < (g + 1) * S; ++j) {
        const size_t i = size_t(t * E + j);
        out[i] = y[i] * silu(z[i]);
        sum += out[i] * out[i];
      }
      const double scale = 1.0 / std::sqrt(sum / double(S) + eps);
      for (int64_t j = g * S; j < (g + 1) * S; ++j) out[size_t(t * E + j)] *= scale * w[size_t(j)];
    }
  return out;
}

}  // namespace bimamba::reference
