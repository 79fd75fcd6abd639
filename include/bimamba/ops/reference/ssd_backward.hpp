// Reference backward of the Mamba-2 SSM (reference/ssd.hpp) in double, one sequence from a zero state, by the
// reverse-time recurrence of ops/ssd_scan_backward.hpp with every state kept:
//   x, dy (L, H, P); dt (L, H); A, D (H); B, C (L, G, N). Gradients returned.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

struct SsdGrads {
  std::vector<double> dx, ddt, dA, dB, dC, dD;  // (L, H, P), (L, H), (H), (L, G, N), (L, G, N), (H)
};

inline SsdGrads ssd_backward(const std::vector<double>& x, const std::vector<double>& dt, const std::vector<double>& A,
                             const std::vector<double>& Bm, const std::vector<double>& Cm, const std::vector<double>& D,
                             const std::vector<double>& dy, int64_t L, int64_t H, int64_t P, int64_t G, int64_t N) {
  SsdGrads g{std::vector<double>(x.size()), std::vector<double>(dt.size()), std::vector<double>(size_t(H)),
             std::vector<double>(Bm.size()), std::vector<double>(Cm.size()), std::vector<double>(size_t(H))};
  for (int64_t h = 0; h < H; ++h) {
    const int64_t q = h / (H / G);
    auto bn = [&](int64_t t, int64_t n) { return size_t((t * G + q) * N + n); };
    std::vector<double> S(size_t((L + 1) * P * N), 0.0);  // S[t + 1] = S_t, S[0] = 0
    for (int64_t t = 0; t < L; ++t) {
      const double a = std::exp(dt[size_t(t * H + h)] * A[size_t(h)]);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t n = 0; n < N; ++n)
          S[size_t(((t + 1) * P + p) * N + n)] = a * S[size_t((t * P + p) * N + n)] +
                                                 dt[size_t(t * H + h)] * x[size_t((t * H + h) * P + p)] * Bm[bn(t, n)];
    }
    std::vector<double> dS(size_t(P * N), 0.0);
    for (int64_t t = L - 1; t >= 0; --t) {
      const double d = dt[size_t(t * H + h)], a = std::exp(d * A[size_t(h)]);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t n = 0; n < N; ++n) dS[size_t(p * N + n)] += dy[size_t((t * H + h) * P + p)] * Cm[bn(t, n)];
      double prev = 0;
      for (int64_t p = 0; p < P; ++p) {
        const size_t xi = size_t((t * H + h) * P + p);
        g.dD[size_t(h)] += dy[xi] * x[xi];
        g.dx[xi] = D[size_t(h)] * dy[xi];
        for (int64_t n = 0; n < N; ++n) {
          const double ds = dS[size_t(p * N + n)];
          g.dC[bn(t, n)] += dy[xi] * S[size_t(((t + 1) * P + p) * N + n)];
          g.dB[bn(t, n)] += d * ds * x[xi];
          g.dx[xi] += d * ds * Bm[bn(t, n)];
          g.ddt[size_t(t * H + h)] += ds * x[xi] * Bm[bn(t, n)];
          prev += ds * S[size_t((t * P + p) * N + n)];
        }
      }
      g.ddt[size_t(t * H + h)] += A[size_t(h)] * a * prev;
      g.dA[size_t(h)] += d * a * prev;
      for (auto& v : dS) v *= a;
    }
  }
  return g;
}

}  // namespace bimamba::reference
