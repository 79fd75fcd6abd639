// Reference causal depthwise conv1d in double, one sequence at a time, token by token through the rolling
// state (so it is also the reference of the step):
//   state (C, K) oldest first; per token: state <- [state[:, 1:], x_t]; y_t[c] = act(bias[c] + sum_k w[c, k] state[c, k])
// x, y (L, C) row-major; w (C, K); bias (C) or empty; state (C, K) in/out (zeros for a fresh sequence).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> causal_conv1d(const std::vector<double>& x, const std::vector<double>& w,
                                         const std::vector<double>& bias, int64_t L, int64_t C, int64_t K, bool silu_act,
                                         std::vector<double>& state) {
  std::vector<double> y(size_t(L * C));
  for (int64_t t = 0; t < L; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double* s = &state[size_t(c * K)];
      for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
      s[K - 1] = x[size_t(t * C + c)];
      double acc = bias.empty() ? 0.0 : bias[size_t(c)];
      for (int64_t k = 0; k < K; ++k) acc += w[size_t(c * K + k)] * s[k];
      y[size_t(t * C + c)] = silu_act ? acc / (1.0 + std::exp(-acc)) : acc;
    }
  return y;
}

}  // namespace bimamba::reference
