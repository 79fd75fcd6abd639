// Reference backward of RMSNorm and the gated group-wise RMSNorm in double (math in ops/rms_norm_backward.hpp
// and ops/gated_rms_norm_backward.hpp), row-major arrays, gradients returned (Overwrite semantics).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rms_norm.hpp"

namespace bimamba::reference {

struct RmsNormGrads {
  std::vector<double> dx, dw;  // (T, D), (D)
};

inline RmsNormGrads rms_norm_backward(const std::vector<double>& x, const std::vector<double>& w,
                                      const std::vector<double>& dy, int64_t T, int64_t D, double eps) {
  RmsNormGrads g{std::vector<double>(size_t(T * D)), std::vector<double>(size_t(D))};
  for (int64_t t = 0; t < T; ++t) {
    const double* xr = &x[size_t(t * D)];
    const double* gr = &dy[size_t(t * D)];
    double sum = 0, dot = 0;
    for (int64_t j = 0; j < D; ++j) sum += xr[j] * xr[j], dot += w[size_t(j)] * gr[j] * xr[j];
    const double r = 1.0 / std::sqrt(sum / double(D) + eps);
    for (int64_t j = 0; j < D; ++j) {
      g.dx[size_t(t * D + j)] = r * w[size_t(j)] * gr[j] - r * r * r * xr[j] * dot / double(D);
      g.dw[size_t(j)] += gr[j] * xr[j] * r;
    }
  }
  return g;
}

struct GatedRmsNormGrads {
  std::vector<double> dy, dz, dw;  // (T, E), (T, E), (E)
};

inline GatedRmsNormGrads gated_rms_norm_backward(const std::vector<double>& y, const std::vector<double>& z,
                                                 const std::vector<double>& w, const std::vector<double>& dout,
                                                 int64_t T, int64_t E, int64_t groups, double eps) {
  const int64_t S = E / groups;
  GatedRmsNormGrads g{std::vector<double>(size_t(T * E)), std::vector<double>(size_t(T * E)),
                      std::vector<double>(size_t(E))};
  std::vector<double> gate(static_cast<size_t>(S));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t q = 0; q < groups; ++q) {
      double sum = 0, dot = 0;
      for (int64_t k = 0; k < S; ++k) {
        const size_t i = size_t(t * E + q * S + k);
        gate[size_t(k)] = y[i] * silu(z[i]);
        sum += gate[size_t(k)] * gate[size_t(k)];
        dot += w[size_t(q * S + k)] * dout[i] * gate[size_t(k)];
      }
      const double r = 1.0 / std::sqrt(sum / double(S) + eps);
      for (int64_t k = 0; k < S; ++k) {
        const size_t i = size_t(t * E + q * S + k), j = size_t(q * S + k);
        const double dg = r * w[j] * dout[i] - r * r * r * gate[size_t(k)] * dot / double(S);
        const double s = 1.0 / (1.0 + std::exp(-z[i]));
        g.dy[i] = dg * silu(z[i]);
        g.dz[i] = dg * y[i] * s * (1.0 + z[i] * (1.0 - s));
        g.dw[j] += dout[i] * gate[size_t(k)] * r;
      }
    }
  return g;
}

}  // namespace bimamba::reference
