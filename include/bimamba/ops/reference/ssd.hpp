// Reference Mamba-2 SSM in double: the plain sequential recurrence (no chunks), one sequence, token by
// token, so it is the reference of both ssd_scan and ssd_step. Head h uses group g = h / (H / G):
//   S[h] <- exp(dt[t, h] A[h]) S[h] + dt[t, h] x[t, h, :] (outer) B[t, g, :];  y[t, h, :] = S[h] C[t, g, :] + D[h] x[t, h, :]
// x, y (L, H, P); dt (L, H); A, D (H) (D may be empty); B, C (L, G, N); state (H, P, N) in/out.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace bimamba::reference {

inline std::vector<double> ssd(const std::vector<double>& x, const std::vector<double>& dt, const std::vector<double>& A,
                               const std::vector<double>& Bm, const std::vector<double>& Cm, const std::vector<double>& D,
                               int64_t L, int64_t H, int64_t P, int64_t G, int64_t N, std::vector<double>& state) {
  std::vector<double> y(size_t(L * H * P));
  for (int64_t t = 0; t < L; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / G);
      const double d = dt[size_t(t * H + h)], decay = std::exp(d * A[size_t(h)]);
      for (int64_t p = 0; p < P; ++p) {
        const double xv = x[size_t((t * H + h) * P + p)];
        double acc = 0;
        for (int64_t n = 0; n < N; ++n) {
          double& s = state[size_t((h * P + p) * N + n)];
          s = decay * s + d * xv * Bm[size_t((t * G + g) * N + n)];
          acc += s * Cm[size_t((t * G + g) * N + n)];
        }
        y[size_t((t * H + h) * P + p)] = acc + (D.empty() ? 0.0 : D[size_t(h)] * xv);
      }
    }
  return y;
}

}  // namespace bimamba::reference
