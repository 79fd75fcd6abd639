// Reference backward of the causal depthwise conv1d with SiLU in double (math in
// ops/causal_conv1d_backward.hpp), one sequence, zero initial state: x, dy (L, C); w (C, K); bias (C).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

struct Conv1dGrads {
  std::vector<double> dx, dw, dbias;  // (L, C), (C, K), (C)
};

inline Conv1dGrads causal_conv1d_backward(const std::vector<double>& x, const std::vector<double>& w,
                                          const std::vector<double>& bias, const std::vector<double>& dy, int64_t L,
                                          int64_t C, int64_t K) {
  Conv1dGrads g{std::vector<double>(size_t(L * C)), std::vector<double>(size_t(C * K)), std::vector<double>(size_t(C))};
  for (int64_t t = 0; t < L; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double a = bias[size_t(c)];
      for (int64_t k = 0; k < K; ++k)
        if (t - K + 1 + k >= 0) a += w[size_t(c * K + k)] * x[size_t((t - K + 1 + k) * C + c)];
      const double s = 1.0 / (1.0 + std::exp(-a));
      const double da = dy[size_t(t * C + c)] * s * (1.0 + a * (1.0 - s));
      g.dbias[size_t(c)] += da;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t src = t - K + 1 + k;
        if (src < 0) continue;
        g.dw[size_t(c * K + k)] += da * x[size_t(src * C + c)];
        g.dx[size_t(src * C + c)] += da * w[size_t(c * K + k)];
      }
    }
  return g;
}

}  // namespace bimamba::reference
