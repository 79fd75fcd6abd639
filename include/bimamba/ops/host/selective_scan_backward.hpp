// Host Mamba-1 selective scan backward (see ops/selective_scan_backward.hpp). Sequences are split over the
// workers (the channels of a sequence share dB and dC); per sequence, channel by channel, the states are
// recomputed into scratch and the reverse recurrence runs. dA and dD are summed per sequence into scratch
// and reduced over b in order afterwards, so the result does not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void selective_scan_backward_impl(Context<Host>& ctx, TensorView<const float, 3, Host> x,
                                         TensorView<const float, 3, Host> dt, TensorView<const float, 2, Host> A,
                                         TensorView<const float, 3, Host> Bm, TensorView<const float, 3, Host> Cm,
                                         TensorView<const float, 1, Host> D, TensorView<const float, 3, Host> z,
                                         TensorView<const float, 3, Host> dy, TensorView<float, 3, Host> dx,
                                         TensorView<float, 3, Host> ddt, TensorView<float, 2, Host> dA,
                                         TensorView<float, 3, Host> dB, TensorView<float, 3, Host> dC,
                                         TensorView<float, 1, Host> dD, TensorView<float, 3, Host> dz, GradientMode mode) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  const int64_t workers = std::max<int64_t>(1, std::min({int64_t(ctx.threads()), B, B * L * E * N * 16 / kParallelWork}));
  auto& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  double* dA_part = ws.take<double>(size_t(B * E * N));           // (B, E, N)
  double* dD_part = ws.take<double>(size_t(B * E));               // (B, E)
  float* states_all = ws.take<float>(size_t(workers * L * N));     // per worker (L, N) of one channel
  double* sums_all = ws.take<double>(size_t(workers * 2 * L * N));  // per worker dB, dC sums (L, N) each
  double* ds_all = ws.take<double>(size_t(workers * N));           // per worker (N)

  ctx.parallel_for(workers, [&](int64_t wbegin, int64_t wend) {
    for (int64_t w = wbegin; w < wend; ++w) {
      float* S = states_all + w * L * N;
      double* sB = sums_all + w * 2 * L * N;
      double* sC = sB + L * N;
      double* ds = ds_all + w * N;
      for (int64_t b = B * w / workers; b < B * (w + 1) / workers; ++b) {
        std::fill(sB, sB + 2 * L * N, 0.0);
        for (int64_t e = 0; e < E; ++e) {
          for (int64_t t = 0; t < L; ++t)
            for (int64_t n = 0; n < N; ++n)
              S[t * N + n] = std::exp(dt(b, t, e) * A(e, n)) * (t > 0 ? S[(t - 1) * N + n] : 0.0f) +
                             dt(b, t, e) * Bm(b, t, n) * x(b, t, e);
          std::fill(ds, ds + N, 0.0);
          double* dA_row = dA_part + (b * E + e) * N;
          std::fill(dA_row, dA_row + N, 0.0);
          double sum_dD = 0;
          const double De = present(D) ? D(e) : 0.0f;
          for (int64_t t = L - 1; t >= 0; --t) {
            const double d = dt(b, t, e), xv = x(b, t, e);
            double q = De * xv, gate = 1.0;
            for (int64_t n = 0; n < N; ++n) q += double(S[t * N + n]) * Cm(b, t, n);
            if (present(z)) {
              gate = silu(z(b, t, e));
              if (present(dz)) put_grad(dz(b, t, e), double(dy(b, t, e)) * q * silu_grad(z(b, t, e)), mode);
            }
            const double dq = dy(b, t, e) * gate;
            sum_dD += dq * xv;
            double dsB = 0, dd = 0;
            for (int64_t n = 0; n < N; ++n) {
              ds[n] += dq * Cm(b, t, n);
              sC[t * N + n] += dq * S[t * N + n];
              sB[t * N + n] += d * xv * ds[n];
              dsB += ds[n] * Bm(b, t, n);
              const double a = std::exp(d * A(e, n)), prev = t > 0 ? S[(t - 1) * N + n] : 0.0f;
              dd += ds[n] * A(e, n) * a * prev;
              dA_row[n] += ds[n] * d * a * prev;
              ds[n] *= a;
            }
            put_grad(dx(b, t, e), De * dq + d * dsB, mode);
            put_grad(ddt(b, t, e), xv * dsB + dd, mode);
          }
          dD_part[b * E + e] = sum_dD;
        }
        for (int64_t t = 0; t < L; ++t)
          for (int64_t n = 0; n < N; ++n) {
            put_grad(dB(b, t, n), sB[t * N + n], mode);
            put_grad(dC(b, t, n), sC[t * N + n], mode);
          }
      }
    }
  }, 1);

  for (int64_t e = 0; e < E; ++e) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t b = 0; b < B; ++b) s += dA_part[(b * E + e) * N + n];
      put_grad(dA(e, n), s, mode);
    }
    if (present(dD)) {
      double s = 0;
      for (int64_t b = 0; b < B; ++b) s += dD_part[b * E + e];
      put_grad(dD(e), s, mode);
    }
  }
}

}  // namespace bimamba::detail
