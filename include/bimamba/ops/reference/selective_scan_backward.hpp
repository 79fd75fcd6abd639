// Reference backward of the Mamba-1 selective scan (reference/selective_scan.hpp) in double, one sequence from
// a zero state, by the reverse recurrence of ops/selective_scan_backward.hpp with every state kept:
//   x, dt, z, dy (L, E); A (E, N); B, C (L, N); D (E); z may be empty (then dz is empty). Gradients returned.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

struct SelectiveScanGrads {
  std::vector<double> dx, ddt, dA, dB, dC, dD, dz;  // (L, E), (L, E), (E, N), (L, N), (L, N), (E), (L, E)
};

inline SelectiveScanGrads selective_scan_backward(const std::vector<double>& x, const std::vector<double>& dt,
                                                  const std::vector<double>& A, const std::vector<double>& Bm,
                                                  const std::vector<double>& Cm, const std::vector<double>& D,
                                                  const std::vector<double>& z, const std::vector<double>& dy,
                                                  int64_t L, int64_t E, int64_t N) {
  SelectiveScanGrads g{std::vector<double>(x.size()), std::vector<double>(x.size()), std::vector<double>(A.size()),
                       std::vector<double>(Bm.size()), std::vector<double>(Cm.size()), std::vector<double>(size_t(E)),
                       std::vector<double>(z.size())};
  for (int64_t e = 0; e < E; ++e) {
    std::vector<double> S(size_t((L + 1) * N), 0.0);  // S[t + 1] = s_t
    for (int64_t t = 0; t < L; ++t)
      for (int64_t n = 0; n < N; ++n)
        S[size_t((t + 1) * N + n)] = std::exp(dt[size_t(t * E + e)] * A[size_t(e * N + n)]) * S[size_t(t * N + n)] +
                                     dt[size_t(t * E + e)] * Bm[size_t(t * N + n)] * x[size_t(t * E + e)];
    std::vector<double> ds(size_t(N), 0.0);
    for (int64_t t = L - 1; t >= 0; --t) {
      const size_t i = size_t(t * E + e);
      double q = D[size_t(e)] * x[i];
      for (int64_t n = 0; n < N; ++n) q += S[size_t((t + 1) * N + n)] * Cm[size_t(t * N + n)];
      double dq = dy[i];
      if (!z.empty()) {
        const double s = 1.0 / (1.0 + std::exp(-z[i]));
        dq = dy[i] * z[i] * s;
        g.dz[i] = dy[i] * q * s * (1.0 + z[i] * (1.0 - s));
      }
      g.dD[size_t(e)] += dq * x[i];
      g.dx[i] = D[size_t(e)] * dq;
      for (int64_t n = 0; n < N; ++n) {
        const size_t tn = size_t(t * N + n), en = size_t(e * N + n);
        const double a = std::exp(dt[i] * A[en]), prev = S[size_t(t * N + n)];
        ds[size_t(n)] += dq * Cm[tn];
        g.dC[tn] += dq * S[size_t((t + 1) * N + n)];
        g.dB[tn] += dt[i] * x[i] * ds[size_t(n)];
        g.dx[i] += dt[i] * ds[size_t(n)] * Bm[tn];
        g.ddt[i] += x[i] * ds[size_t(n)] * Bm[tn] + ds[size_t(n)] * A[en] * a * prev;
        g.dA[en] += ds[size_t(n)] * dt[i] * a * prev;
        ds[size_t(n)] *= a;
      }
    }
  }
  return g;
}

}  // namespace bimamba::reference
