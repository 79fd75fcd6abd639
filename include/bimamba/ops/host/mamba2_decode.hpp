// Host fused Mamba-2 decode step (see ops/mamba2_decode.hpp). Three passes over one token of B sequences:
//   1. conv step + SiLU for all B * C channels (parallel over channels);
//   2. per (sequence, head), in parallel: dt, decay, the (P x N) state update and read-out, D skip, the
//      SiLU(z) gate, and the head's sum of squares for the norm; the state rows are read and written once,
//      8 lanes at a time with FMA (AVX2), the read-out summed in 8 lane accumulators;
//   3. per (sequence, norm group): the RMS scale from the heads' sums, times the norm weight.
// Agrees with the unfused ops (conv1d step, dt_softplus, neg_exp, ssd_step, gated_rms_norm) to float
// rounding: only the summation order of the state read-out and of the norm differ.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace bimamba::detail {

// s[n] <- decay s[n] + dx b[n] for n < N; returns sum_n s[n] c[n].
inline float ssm_row_update(float* s, const float* b, const float* c, float decay, float dx, int64_t N) {
  int64_t n = 0;
  float acc = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 vd = _mm256_set1_ps(decay), vx = _mm256_set1_ps(dx);
  __m256 va = _mm256_setzero_ps();
  for (; n + 8 <= N; n += 8) {
    const __m256 v = _mm256_fmadd_ps(vx, _mm256_loadu_ps(b + n), _mm256_mul_ps(vd, _mm256_loadu_ps(s + n)));
    _mm256_storeu_ps(s + n, v);
    va = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + n), va);
  }
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(va), _mm256_extractf128_ps(va, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  acc = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
#endif
  for (; n < N; ++n) {
    s[n] = decay * s[n] + dx * b[n];
    acc += s[n] * c[n];
  }
  return acc;
}

inline void mamba2_decode_step_impl(Context<Host>& ctx, const Mamba2DecodeWeights<Host>& w,
                                    TensorView<const float, 2, Host> zxbcdt, TensorView<float, 3, Host> conv_state,
                                    TensorView<float, 4, Host> ssm_state, TensorView<float, 2, Host> y) {
  const int64_t B = zxbcdt.size(0), H = w.heads, P = w.headdim, G = w.groups, N = w.d_state;
  const int64_t E = H * P, C = E + 2 * G * N, K = w.conv_weight.size(1), S = E / G, heads_per_group = H / G;
  const bool has_bias = present(w.conv_bias), has_d = present(w.D);
  WorkspaceScope<Host> scope(ctx.workspace());
  float* xbc = ctx.workspace().take<float>(size_t(B * C));    // (B, C) conv outputs
  float* sumsq = ctx.workspace().take<float>(size_t(B * H));  // (B, H) sum of squares of the gated head outputs

  ctx.parallel_for(B * C, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / C, c = i % C;
      float* s = &conv_state(b, c, 0);
      for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
      s[K - 1] = zxbcdt(b, E + c);
      float acc = has_bias ? w.conv_bias(c) : 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += w.conv_weight(c, k) * s[k];
      xbc[i] = silu(acc);
    }
  }, 256);

  ctx.parallel_for(B * H, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      const float dt = std::min(w.dt_hi, std::max(w.dt_lo, softplus(zxbcdt(b, E + C + h) + w.dt_bias(h))));
      const float decay = std::exp(dt * -std::exp(w.A_log(h)));
      const float* x = xbc + b * C + h * P;
      const float* bm = xbc + b * C + E + g * N;
      const float* cm = bm + G * N;
      float sq = 0.0f;
      for (int64_t p = 0; p < P; ++p) {
        const float out = ssm_row_update(&ssm_state(b, h, p, 0), bm, cm, decay, dt * x[p], N) +
                          (has_d ? w.D(h) * x[p] : 0.0f);
        const float v = out * silu(zxbcdt(b, h * P + p));
        y(b, h * P + p) = v;
        sq += v * v;
      }
      sumsq[i] = sq;
    }
  });

  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      float sum = 0.0f;
      for (int64_t h = g * heads_per_group; h < (g + 1) * heads_per_group; ++h) sum += sumsq[b * H + h];
      const float scale = 1.0f / std::sqrt(sum / float(S) + w.norm_eps);
      for (int64_t j = g * S; j < (g + 1) * S; ++j) y(b, j) = y(b, j) * scale * w.norm_weight(j);
    }
}

}  // namespace bimamba::detail
