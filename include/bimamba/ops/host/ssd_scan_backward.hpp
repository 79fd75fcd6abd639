// Host Mamba-2 scan backward (see ops/ssd_scan_backward.hpp). The (batch, group) pairs are split into one
// contiguous range per worker (the heads of a group share dB and dC, so a pair owns its slices of them);
// per pair, head by head: the states are recomputed forward into scratch, then the reverse recurrence
// runs. dA and dD are summed per (b, h) into scratch and reduced over b in order afterwards, so the result
// does not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void ssd_scan_backward_impl(Context<Host>& ctx, TensorView<const float, 4, Host> x,
                                   TensorView<const float, 3, Host> dt, TensorView<const float, 1, Host> A,
                                   TensorView<const float, 4, Host> Bm, TensorView<const float, 4, Host> Cm,
                                   TensorView<const float, 1, Host> D, TensorView<const float, 4, Host> dy,
                                   TensorView<float, 4, Host> dx, TensorView<float, 3, Host> ddt,
                                   TensorView<float, 1, Host> dA, TensorView<float, 4, Host> dB,
                                   TensorView<float, 4, Host> dC, TensorView<float, 1, Host> dD, GradientModes modes) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  const int64_t per_group = H / G, pairs = B * G;
  const int64_t workers = std::max<int64_t>(
      1, std::min({int64_t(ctx.threads()), pairs, pairs * per_group * L * P * N * 12 / kParallelWork}));
  auto& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  double* dA_part = ws.take<double>(size_t(B * H));              // (B, H)
  double* dD_part = ws.take<double>(size_t(B * H));              // (B, H)
  float* states_all = ws.take<float>(size_t(workers * L * P * N));  // per worker (L, P, N)
  double* sums_all = ws.take<double>(size_t(workers * 2 * L * N));  // per worker dB, dC sums (L, N) each
  double* dS_all = ws.take<double>(size_t(workers * P * N));        // per worker (P, N)

  ctx.parallel_for(workers, [&](int64_t wbegin, int64_t wend) {
    for (int64_t w = wbegin; w < wend; ++w) {
      float* S = states_all + w * L * P * N;
      double* sB = sums_all + w * 2 * L * N;
      double* sC = sB + L * N;
      double* dS = dS_all + w * P * N;
      for (int64_t pair = pairs * w / workers; pair < pairs * (w + 1) / workers; ++pair) {
        const int64_t b = pair / G, g = pair % G;
        std::fill(sB, sB + 2 * L * N, 0.0);
        for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h) {
          const double Ah = A(h), Dh = present(D) ? D(h) : 0.0f;
          // Forward: S[t] (P, N).
          for (int64_t t = 0; t < L; ++t) {
            const float a = std::exp(dt(b, t, h) * A(h)), d = dt(b, t, h);
            for (int64_t p = 0; p < P; ++p)
              for (int64_t n = 0; n < N; ++n) {
                const float prev = t > 0 ? S[((t - 1) * P + p) * N + n] : 0.0f;
                S[(t * P + p) * N + n] = a * prev + d * x(b, t, h, p) * Bm(b, t, g, n);
              }
          }
          // Reverse.
          std::fill(dS, dS + P * N, 0.0);
          double sum_dA = 0, sum_dD = 0;
          for (int64_t t = L - 1; t >= 0; --t) {
            const double d = dt(b, t, h), a = std::exp(d * Ah);
            double dot_xSB = 0, dot_prev = 0;
            for (int64_t p = 0; p < P; ++p) {
              const double gy = dy(b, t, h, p), xv = x(b, t, h, p);
              sum_dD += gy * xv;
              double dSB = 0;
              for (int64_t n = 0; n < N; ++n) {
                double& ds = dS[p * N + n];
                ds += gy * Cm(b, t, g, n);
                sC[t * N + n] += gy * S[(t * P + p) * N + n];
                sB[t * N + n] += d * ds * xv;
                dSB += ds * Bm(b, t, g, n);
                if (t > 0) dot_prev += ds * S[((t - 1) * P + p) * N + n];
              }
              put_grad(dx(b, t, h, p), d * dSB + Dh * gy, modes.inputs);
              dot_xSB += xv * dSB;
            }
            put_grad(ddt(b, t, h), dot_xSB + Ah * a * dot_prev, modes.inputs);
            sum_dA += d * a * dot_prev;
            for (int64_t i = 0; i < P * N; ++i) dS[i] *= a;
          }
          dA_part[b * H + h] = sum_dA;
          dD_part[b * H + h] = sum_dD;
        }
        for (int64_t t = 0; t < L; ++t)
          for (int64_t n = 0; n < N; ++n) {
            put_grad(dB(b, t, g, n), sB[t * N + n], modes.inputs);
            put_grad(dC(b, t, g, n), sC[t * N + n], modes.inputs);
          }
      }
    }
  }, 1);

  for (int64_t h = 0; h < H; ++h) {
    double sa = 0, sd = 0;
    for (int64_t b = 0; b < B; ++b) sa += dA_part[b * H + h], sd += dD_part[b * H + h];
    put_grad(dA(h), sa, modes.inputs);
    if (present(dD)) put_grad(dD(h), sd, modes.params);
  }
}

}  // namespace bimamba::detail
