// Reference FBI effective weight in double: W_eff[i, j] = alpha[j] * s(W[i, j]) + beta[j], s(w) = +1 for
// w >= 0 else -1; W (out, in) row-major, alpha, beta (in).
#pragma once

#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> fbi_weight(const std::vector<double>& W, const std::vector<double>& alpha,
                                      const std::vector<double>& beta, int64_t out, int64_t in) {
  std::vector<double> w_eff(size_t(out * in));
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < in; ++j)
      w_eff[size_t(i * in + j)] = alpha[size_t(j)] * (W[size_t(i * in + j)] >= 0.0 ? 1.0 : -1.0) + beta[size_t(j)];
  return w_eff;
}

}  // namespace bimamba::reference
