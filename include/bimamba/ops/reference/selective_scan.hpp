// Reference Mamba-1 selective scan in double, one sequence, token by token (reference of both the prefill
// and the step):
//   s[e, n] <- exp(dt[t, e] A[e, n]) s[e, n] + dt[t, e] B[t, n] x[t, e]
//   y[t, e]  = (sum_n s[e, n] C[t, n] + D[e] x[t, e]) * (z empty ? 1 : silu(z[t, e]))
// x, dt, z, y (L, E); A (E, N); B, C (L, N); D (E) or empty; state (E, N) in/out.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> selective_scan(const std::vector<double>& x, const std::vector<double>& dt,
                                          const std::vector<double>& A, const std::vector<double>& Bm,
                                          const std::vector<double>& Cm, const std::vector<double>& D,
                                          const std::vector<double>& z, int64_t L, int64_t E, int64_t N,
                                          std::vector<double>& state) {
  std::vector<double> y(size_t(L * E));
  for (int64_t t = 0; t < L; ++t)
    for (int64_t e = 0; e < E; ++e) {
      const double d = dt[size_t(t * E + e)], xv = x[size_t(t * E + e)];
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        double& s = state[size_t(e * N + n)];
        s = std::exp(d * A[size_t(e * N + n)]) * s + d * Bm[size_t(t * N + n)] * xv;
        acc += s * Cm[size_t(t * N + n)];
      }
      double out = acc + (D.empty() ? 0.0 : D[size_t(e)] * xv);
      if (!z.empty()) {
        const double zv = z[size_t(t * E + e)];
        out *= zv / (1.0 + std::exp(-zv));
      }
      y[size_t(t * E + e)] = out;
    }
  return y;
}

}  // namespace bimamba::reference
