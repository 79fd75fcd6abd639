// Reference backward of the dense linear layer and the latent FBI-Linear layer in double (math in
// ops/linear_backward.hpp and ops/fbi_linear_backward.hpp), row-major arrays, gradients returned.
#pragma once

#include <cstdint>
#include <vector>

namespace bimamba::reference {

struct LinearGrads {
  std::vector<double> dx, dW, dbias;  // (T, in), (out, in), (out)
};

inline LinearGrads linear_backward(const std::vector<double>& x, const std::vector<double>& W,
                                   const std::vector<double>& dy, int64_t T, int64_t in, int64_t out) {
  LinearGrads g{std::vector<double>(size_t(T * in)), std::vector<double>(size_t(out * in)),
                std::vector<double>(size_t(out))};
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      const double d = dy[size_t(t * out + o)];
      g.dbias[size_t(o)] += d;
      for (int64_t i = 0; i < in; ++i) {
        g.dx[size_t(t * in + i)] += d * W[size_t(o * in + i)];
        g.dW[size_t(o * in + i)] += d * x[size_t(t * in + i)];
      }
    }
  return g;
}

struct FbiLinearGrads {
  std::vector<double> dx, dW, dalpha, dbeta;  // (T, in), (out, in), (in), (in)
};

inline FbiLinearGrads fbi_linear_backward(const std::vector<double>& x, const std::vector<double>& W,
                                          const std::vector<double>& alpha, const std::vector<double>& beta,
                                          const std::vector<double>& dy, int64_t T, int64_t in, int64_t out) {
  std::vector<double> w_eff(size_t(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      const double s = W[size_t(o * in + i)] >= 0 ? 1.0 : -1.0;
      w_eff[size_t(o * in + i)] = alpha[size_t(i)] * s + beta[size_t(i)];
    }
  const LinearGrads lin = linear_backward(x, w_eff, dy, T, in, out);  // lin.dW = G = dy^T x
  FbiLinearGrads g{lin.dx, std::vector<double>(size_t(out * in)), std::vector<double>(size_t(in)),
                   std::vector<double>(size_t(in))};
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      const double G = lin.dW[size_t(o * in + i)], s = W[size_t(o * in + i)] >= 0 ? 1.0 : -1.0;
      g.dW[size_t(o * in + i)] = alpha[size_t(i)] * G;
      g.dalpha[size_t(i)] += G * s;
      g.dbeta[size_t(i)] += G;
    }
  return g;
}

}  // namespace bimamba::reference
