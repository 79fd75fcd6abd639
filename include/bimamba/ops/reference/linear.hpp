// Reference dense linear layer in double: y (T, out) = x (T, in) W^T (W (out, in)) + bias (out, or empty).
#pragma once

#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& w,
                                  const std::vector<double>& bias, int64_t T, int64_t in, int64_t out) {
  std::vector<double> y(size_t(T * out));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias.empty() ? 0.0 : bias[size_t(o)];
      for (int64_t i = 0; i < in; ++i) acc += x[size_t(t * in + i)] * w[size_t(o * in + i)];
      y[size_t(t * out + o)] = acc;
    }
  return y;
}

}  // namespace bimamba::reference
