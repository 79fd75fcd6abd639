// Host chunked SSD scan (see ops/ssd_scan.hpp for the math).
//
// Phase 1 computes CB = Cc Bc^T (Q x Q) once per (batch, group, chunk), in parallel: the H / G heads of a
// group share it (with one group it would otherwise be recomputed by every head: half of all the flops).
// Phase 2 splits the (batch, head) pairs into one contiguous range per thread, each thread with its own
// scratch from the workspace. For every pair, chunk by chunk (Q <= chunk_size tokens):
//   seg(i, j) = a_{j+1} + ... + a_i  (j < i; a_t = dt_t A), summed directly rather than as a difference of
//               cumulative sums, so that long chunks with large decays lose no precision
//   M   = CB ⊙ [exp(seg(i, j)) dt_j for j <= i, 0 above]           (Q x Q)
//   Y   = M X + diag(exp(cs)) (Cc S^T) + D X                        (Q x P)      two GEMMs
//   S  <- exp(cs_{Q-1}) S + X^T diag(exp(seg(Q-1, j)) dt_j) Bc      (P x N)      GEMM
// with cs_i = a_0 + ... + a_i. X, Bc, Cc and Y are Eigen maps straight onto the (strided) tensors.
// Decay factors exp(v) with v < -60 (below 1e-26) are flushed to 0 (decay_exp): long chunks with strong
// decays would otherwise fill M and S with subnormal floats, which x86 multiplies ~100x slower (a 50x slower
// scan was measured). What is dropped is below 1e-26 of the terms kept, far under float rounding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <Eigen/Core>

#include "../../core/context.hpp"
#include "../../tensor/eigen.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline float decay_exp(float v) { return v < -60.0f ? 0.0f : std::exp(v); }

inline void ssd_scan_impl(Context<Host>& ctx, TensorView<const float, 4, Host> x, TensorView<const float, 3, Host> dt,
                          TensorView<const float, 1, Host> A, TensorView<const float, 4, Host> Bm,
                          TensorView<const float, 4, Host> Cm, TensorView<const float, 1, Host> D, int64_t chunk_size,
                          TensorView<float, 4, Host> y, TensorView<const float, 4, Host> initial_state,
                          TensorView<float, 4, Host> final_state) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  const int64_t pairs = B * H, heads_per_group = H / G;
  const int64_t Qmax = std::max<int64_t>(1, std::min(chunk_size, L));
  // One worker per thread, fewer when the whole scan is too small to pay for a parallel region.
  const int64_t work = pairs * L * (2 * Qmax * (N + P) + 4 * P * N);
  const int64_t workers = std::max<int64_t>(1, std::min({int64_t(ctx.threads()), pairs, work / kParallelWork}));

  using Matrix = RowMajorMatrix<float>;
  using ConstStrided = Eigen::Map<const Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using Strided = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using Dense = Eigen::Map<Matrix>;
  using Vec = Eigen::Map<Eigen::VectorXf>;

  // Phase 1: slot (b * G + g) * chunks + c of Qmax * Qmax floats holds Cc Bc^T of chunk c, dense (Q x Q).
  const int64_t chunks = (L + Qmax - 1) / Qmax;
  auto& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  float* cb = ws.take<float>(size_t(B * G * chunks * Qmax * Qmax));
  ctx.parallel_for(B * G * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (G * chunks), g = item / chunks % G, c0 = item % chunks * Qmax;
      const int64_t Q = std::min(Qmax, L - c0);
      ConstStrided Bc(&Bm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Bm.stride(1)));
      ConstStrided Cc(&Cm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Cm.stride(1)));
      Dense(cb + item * Qmax * Qmax, Q, Q).noalias() = Cc * Bc.transpose();
    }
  }, grain(2 * Qmax * Qmax * N));

  // Per worker: M (Q x Q), seg row (Q), tmp (Q x P), state (P x N), dt (Q), decay vectors (Q) x 2.
  const int64_t per_worker = Qmax * Qmax + Qmax + Qmax * P + P * N + 3 * Qmax;
  float* scratch = ws.take<float>(size_t(workers * per_worker));

  ctx.parallel_for(workers, [&](int64_t wbegin, int64_t wend) {
    for (int64_t w = wbegin; w < wend; ++w) {
      float* base = scratch + w * per_worker;
      float* m_buf = base;
      float* seg = m_buf + Qmax * Qmax;
      float* tmp_buf = seg + Qmax;
      float* state_buf = tmp_buf + Qmax * P;
      float* dtv = state_buf + P * N;
      float* in_decay = dtv + Qmax;   // exp(cs_i): decay from the chunk start to i
      float* out_w = in_decay + Qmax;  // exp(seg(Q-1, j)) dt_j: weight of token j in the outgoing state

      for (int64_t pair = pairs * w / workers; pair < pairs * (w + 1) / workers; ++pair) {
        const int64_t b = pair / H, h = pair % H, g = h / heads_per_group;
        const float a = A(h);
        const float d_skip = present(D) ? D(h) : 0.0f;
        float* s_ptr = present(final_state) ? &final_state(b, h, 0, 0) : state_buf;
        Dense S(s_ptr, P, N);
        if (!present(initial_state)) S.setZero();
        else if (&initial_state(b, h, 0, 0) != s_ptr) S = Eigen::Map<const Matrix>(&initial_state(b, h, 0, 0), P, N);

        for (int64_t c0 = 0; c0 < L; c0 += Qmax) {
          const int64_t Q = std::min(Qmax, L - c0);
          ConstStrided X(&x(b, c0, h, 0), Q, P, Eigen::OuterStride<>(x.stride(1)));
          ConstStrided Bc(&Bm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Bm.stride(1)));
          ConstStrided Cc(&Cm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Cm.stride(1)));
          Strided Y(&y(b, c0, h, 0), Q, P, Eigen::OuterStride<>(y.stride(1)));
          Dense M(m_buf, Q, Q), tmp(tmp_buf, Q, P);

          float cs = 0.0f;
          for (int64_t i = 0; i < Q; ++i) {
            dtv[i] = dt(b, c0 + i, h);
            cs += dtv[i] * a;
            in_decay[i] = decay_exp(cs);
          }
          const Dense CB(cb + ((b * G + g) * chunks + c0 / Qmax) * Qmax * Qmax, Q, Q);
          for (int64_t i = 0; i < Q; ++i) {
            // seg[j] = a_{j+1} + ... + a_i for j <= i, accumulated from the diagonal down.
            seg[i] = 0.0f;
            for (int64_t j = i - 1; j >= 0; --j) seg[j] = seg[j + 1] + dtv[j + 1] * a;
            for (int64_t j = 0; j <= i; ++j) M(i, j) = CB(i, j) * (decay_exp(seg[j]) * dtv[j]);
            for (int64_t j = i + 1; j < Q; ++j) M(i, j) = 0.0f;
            if (i == Q - 1)
              for (int64_t j = 0; j < Q; ++j) out_w[j] = decay_exp(seg[j]) * dtv[j];
          }
          Y.noalias() = M * X;
          tmp.noalias() = Cc * S.transpose();
          Y += Vec(in_decay, Q).asDiagonal() * tmp;
          if (d_skip != 0.0f) Y += d_skip * X;
          S *= in_decay[Q - 1];
          S.noalias() += X.transpose() * Vec(out_w, Q).asDiagonal() * Bc;
        }
      }
    }
  });
}

}  // namespace bimamba::detail
