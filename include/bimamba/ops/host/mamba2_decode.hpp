// Host fused Mamba-2 decode step (see ops/mamba2_decode.hpp). One parallel region over the B * H
// (sequence, head) pairs, cut into one contiguous chunk per worker, then a short serial pass:
//   1. per chunk, for each sequence it touches: the conv step + SiLU of the sequence's B and C channels
//      (2GN of them, shared by all heads of a group) into the chunk's own scratch, from the conv state as it
//      was before this step (the state itself is shifted in pass 3, after every chunk has read it);
//   2. per (sequence, head) of the chunk: the conv step + SiLU of the head's P x channels (state shifted in
//      place: only this head touches them), dt, decay, the (P x N) state update and read-out, D skip, the
//      SiLU(z) gate, and the head's sum of squares for the norm; the state rows are read and written once,
//      8 lanes at a time with FMA (AVX2), the read-out summed in 8 lane accumulators;
//   3. serial: shift the B / C conv states; per (sequence, norm group) the RMS scale from the heads' sums,
//      times the norm weight (skipped without a norm weight).
// One fork / join per layer instead of two, and no barrier inside: B / C are recomputed by each chunk
// (2GN of the C channels: 256 of 3328, 8% of the conv work, per extra worker). Every value is computed by the same
// arithmetic in the same order whatever the number of threads, so the result does not depend on it (bit
// for bit); it agrees with the unfused ops (conv1d step, dt_softplus, neg_exp, ssd_step, gated_rms_norm) to
// float rounding: only the summation order of the state read-out and of the norm differ.
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

// silu(bias + sum_k w[k] s'[k]) with s' = the conv state row s shifted left by one and `in` appended
// (s' itself is not stored); the same sum, in the same order, as computing it after the shift.
inline float conv_step_value(const float* s, const float* w, float bias, float in, int64_t K) {
  float acc = bias;
  for (int64_t k = 0; k + 1 < K; ++k) acc += w[k] * s[k + 1];
  acc += w[K - 1] * in;
  return silu(acc);
}

inline void mamba2_decode_step_impl(Context<Host>& ctx, const Mamba2DecodeWeights<Host>& w,
                                    TensorView<const float, 2, Host> zxbcdt, TensorView<float, 3, Host> conv_state,
                                    TensorView<float, 4, Host> ssm_state, TensorView<float, 2, Host> y) {
  const int64_t B = zxbcdt.size(0), H = w.heads, P = w.headdim, G = w.groups, N = w.d_state;
  const int64_t E = H * P, C = E + 2 * G * N, K = w.conv_weight.size(1), S = E / G, heads_per_group = H / G;
  const int64_t GN2 = 2 * G * N;
  const bool has_bias = present(w.conv_bias), has_d = present(w.D);
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(ctx.threads(), B * H));
  WorkspaceScope<Host> scope(ctx.workspace());
  float* bc = ctx.workspace().take<float>(size_t(workers * GN2));     // (workers, 2GN) B | C of the current sequence
  float* xs = ctx.workspace().take<float>(size_t(workers * P));       // (workers, P) x of the current head
  float* sumsq = ctx.workspace().take<float>(size_t(B * H));          // (B, H) sum of squares of the gated head outputs

  ctx.parallel_for(workers, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      float* bcw = bc + chunk * GN2;
      float* x = xs + chunk * P;
      int64_t seq = -1;
      for (int64_t i = B * H * chunk / workers; i < B * H * (chunk + 1) / workers; ++i) {
        const int64_t b = i / H, h = i % H, g = h / heads_per_group;
        if (b != seq) {  // pass 1: B and C of sequence b
          seq = b;
          for (int64_t j = 0; j < GN2; ++j) {
            const int64_t c = E + j;
            bcw[j] = conv_step_value(&conv_state(b, c, 0), &w.conv_weight(c, 0), has_bias ? w.conv_bias(c) : 0.0f,
                                     zxbcdt(b, E + c), K);
          }
        }
        for (int64_t p = 0; p < P; ++p) {  // pass 2: the head's x channels, state shifted in place
          const int64_t c = h * P + p;
          float* s = &conv_state(b, c, 0);
          x[p] = conv_step_value(s, &w.conv_weight(c, 0), has_bias ? w.conv_bias(c) : 0.0f, zxbcdt(b, E + c), K);
          for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
          s[K - 1] = zxbcdt(b, E + c);
        }
        const float dt = std::min(w.dt_hi, std::max(w.dt_lo, softplus(zxbcdt(b, E + C + h) + w.dt_bias(h))));
        const float decay = std::exp(dt * -std::exp(w.A_log(h)));
        const float* bm = bcw + g * N;
        const float* cm = bcw + G * N + g * N;
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
    }
  });

  for (int64_t b = 0; b < B; ++b) {  // pass 3
    for (int64_t c = E; c < C; ++c) {
      float* s = &conv_state(b, c, 0);
      for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
      s[K - 1] = zxbcdt(b, E + c);
    }
    for (int64_t g = 0; g < G && present(w.norm_weight); ++g) {
      float sum = 0.0f;
      for (int64_t h = g * heads_per_group; h < (g + 1) * heads_per_group; ++h) sum += sumsq[b * H + h];
      const float scale = 1.0f / std::sqrt(sum / float(S) + w.norm_eps);
      for (int64_t j = g * S; j < (g + 1) * S; ++j) y(b, j) = y(b, j) * scale * w.norm_weight(j);
    }
  }
}

}  // namespace bimamba::detail
