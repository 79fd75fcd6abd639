// Host chunked SSD scan (see ops/ssd_scan.hpp for the math), in chunks of min(chunk_size, kMaxHostChunk).
//
// Phase 1 computes CB = Cc Bc^T (Q x Q) once per (batch, group, chunk), in parallel: the H / G heads of a
// group share it (with one group it would otherwise be recomputed by every head: half of all the flops).
// Phase 2 splits the (batch, head) pairs into one contiguous range per thread, each thread with its own
// scratch from the workspace, and cuts a range into segments of heads of one (batch, group). For every
// segment, chunk by chunk (Q <= min(chunk_size, kMaxHostChunk) tokens), for every head of it:
//   seg(i, j) = a_{j+1} + ... + a_i  (j < i; a_t = dt_t A); exp(seg(i, j)) is the product
//               exp(a_{j+1}) ... exp(a_i), built from the diagonal down (one multiply per entry, not one
//               exp: the exps were half of the scan's time at Q = 256) rather than as a quotient of
//               cumulative decays, so that long chunks with large decays lose no precision (relative
//               error <= (i - j + 1) u)
//   M   = CB ⊙ [exp(seg(i, j)) dt_j for j <= i, 0 above]           (Q x Q)
//   Y   = M X + diag(exp(cs)) (Cc S^T) + D X                        (Q x P)
//   S  <- exp(cs_{Q-1}) S + X^T diag(exp(seg(Q-1, j)) dt_j) Bc      (P x N)
// with cs_i = a_0 + ... + a_i. M X is one GEMM per head; Cc S^T and the X^T (...) Bc update are one GEMM
// each for all the segment's heads (their states stacked, nh P x N): with Bi-Mamba 780M's one group that
// is 24-48 heads at once, GEMMs wide enough for Eigen's kernels (per-head GEMMs of 64 x 128 x 64 ran at
// about half the rate). X, Bc, Cc and Y are Eigen maps straight onto the (strided) tensors.
// Decay factors exp(v) with v < -60 (below 1e-26) are flushed to 0 (decay_exp, kDecayFlush): long chunks with strong
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
inline constexpr float kDecayFlush = 8.75e-27f;  // exp(-60): the same flush point for products of decays
// Chunks are cut to at most this many tokens whatever chunk_size asks (the result is the same up to rounding):
// per token and head a chunk of Q costs 2 Q P (M X, and Q / 2 decay products) + 4 P N (state in and out), so
// long chunks only add work. Measured (780M shape: L = 512, H = 48, P = 64, N = 128, one thread, CPU time):
// Q = 256 44 ms, 128 31 ms, 64 31 ms, 32 29 ms; 64 keeps the GEMMs large enough for Eigen's kernels.
inline constexpr int64_t kMaxHostChunk = 64;

inline void ssd_scan_impl(Context<Host>& ctx, TensorView<const float, 4, Host> x, TensorView<const float, 3, Host> dt,
                          TensorView<const float, 1, Host> A, TensorView<const float, 4, Host> Bm,
                          TensorView<const float, 4, Host> Cm, TensorView<const float, 1, Host> D, int64_t chunk_size,
                          TensorView<float, 4, Host> y, TensorView<const float, 4, Host> initial_state,
                          TensorView<float, 4, Host> final_state) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), P = x.size(3), G = Bm.size(2), N = Bm.size(3);
  const int64_t pairs = B * H, heads_per_group = H / G;
  const int64_t Qmax = std::max<int64_t>(1, std::min({chunk_size, L, kMaxHostChunk}));
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

  // Phase 2. A worker's pairs are cut into segments of consecutive heads of one (batch, group): they share
  // Cc and Bc, so the state terms of the whole segment are two GEMMs per chunk (nh P columns wide) rather
  // than two small ones per head. Per worker: M (Q x Q), step, dt, in_decay, out_w (Q each), Ys and Xs
  // (Q x nh P), the segment's states S (nh P x N).
  const int64_t max_heads = std::min(heads_per_group, (pairs + workers - 1) / workers);
  const int64_t per_worker = Qmax * Qmax + 4 * Qmax + 2 * Qmax * max_heads * P + max_heads * P * N;
  float* scratch = ws.take<float>(size_t(workers * per_worker));

  ctx.parallel_for(workers, [&](int64_t wbegin, int64_t wend) {
    for (int64_t w = wbegin; w < wend; ++w) {
      float* m_buf = scratch + w * per_worker;
      float* step = m_buf + Qmax * Qmax;  // exp(a_i): decay of one token
      float* dtv = step + Qmax;
      float* in_decay = dtv + Qmax;   // exp(cs_i): decay from the chunk start to i
      float* out_w = in_decay + Qmax;  // exp(seg(Q-1, j)) dt_j: weight of token j in the outgoing state
      float* ys_buf = out_w + Qmax;
      float* xs_buf = ys_buf + Qmax * max_heads * P;
      float* s_buf = xs_buf + Qmax * max_heads * P;

      const int64_t p_end = pairs * (w + 1) / workers;
      for (int64_t p0 = pairs * w / workers; p0 < p_end;) {
        const int64_t b = p0 / H, h0 = p0 % H, g = h0 / heads_per_group;
        const int64_t nh = std::min(p_end - p0, (g + 1) * heads_per_group - h0);  // heads h0 .. h0 + nh - 1
        p0 += nh;
        Dense S(s_buf, nh * P, N);  // rows k P .. k P + P - 1: the state (P x N) of head h0 + k
        for (int64_t k = 0; k < nh; ++k) {
          auto Sk = S.middleRows(k * P, P);
          if (present(initial_state)) {
            for (int64_t i = 0; i < P; ++i)
              for (int64_t n = 0; n < N; ++n) Sk(i, n) = initial_state(b, h0 + k, i, n);
          } else {
            Sk.setZero();
          }
        }

        for (int64_t c0 = 0; c0 < L; c0 += Qmax) {
          const int64_t Q = std::min(Qmax, L - c0);
          ConstStrided Bc(&Bm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Bm.stride(1)));
          ConstStrided Cc(&Cm(b, c0, g, 0), Q, N, Eigen::OuterStride<>(Cm.stride(1)));
          Dense M(m_buf, Q, Q), Ys(ys_buf, Q, nh * P), Xs(xs_buf, Q, nh * P);
          const Dense CB(cb + ((b * G + g) * chunks + c0 / Qmax) * Qmax * Qmax, Q, Q);
          Ys.noalias() = Cc * S.transpose();  // the incoming states read by every token, all heads at once

          for (int64_t k = 0; k < nh; ++k) {
            const int64_t h = h0 + k;
            const float a = A(h);
            const float d_skip = present(D) ? D(h) : 0.0f;
            ConstStrided X(&x(b, c0, h, 0), Q, P, Eigen::OuterStride<>(x.stride(1)));
            Strided Y(&y(b, c0, h, 0), Q, P, Eigen::OuterStride<>(y.stride(1)));
            float cs = 0.0f;
            for (int64_t i = 0; i < Q; ++i) {
              dtv[i] = dt(b, c0 + i, h);
              cs += dtv[i] * a;
              in_decay[i] = decay_exp(cs);
              step[i] = decay_exp(dtv[i] * a);
            }
            for (int64_t i = 0; i < Q; ++i) {
              // f = exp(seg(i, j)) = exp(a_{j+1}) ... exp(a_i), multiplied from the diagonal down; once below
              // kDecayFlush it is 0 for good (0 absorbs), so the rest of the row is 0.
              float* Mi = m_buf + i * Q;
              float f = 1.0f;
              int64_t j = i;
              for (; j >= 0; --j) {
                Mi[j] = CB(i, j) * (f * dtv[j]);
                if (i == Q - 1) out_w[j] = f * dtv[j];
                if (j == 0) break;
                f *= step[j];
                if (f < kDecayFlush) break;
              }
              for (int64_t m = 0; m < j; ++m) Mi[m] = 0.0f;
              if (i == Q - 1)
                for (int64_t m = 0; m < j; ++m) out_w[m] = 0.0f;
              for (int64_t m = i + 1; m < Q; ++m) Mi[m] = 0.0f;
            }
            Y.noalias() = M * X;
            Y += Vec(in_decay, Q).asDiagonal() * Ys.middleCols(k * P, P);
            if (d_skip != 0.0f) Y += d_skip * X;
            Xs.middleCols(k * P, P) = Vec(out_w, Q).asDiagonal() * X;
            S.middleRows(k * P, P) *= in_decay[Q - 1];
          }
          S.noalias() += Xs.transpose() * Bc;  // the outgoing states, all heads at once
        }
        if (present(final_state))
          for (int64_t k = 0; k < nh; ++k)
            for (int64_t i = 0; i < P; ++i)
              for (int64_t n = 0; n < N; ++n) final_state(b, h0 + k, i, n) = S(k * P + i, n);
      }
    }
  });
}

}  // namespace bimamba::detail
