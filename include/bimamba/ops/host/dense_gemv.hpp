// Host dense GEMV / small GEMM for the LM head (see ops/dense_gemv.hpp): y (T, V) = x (T, D) W^T, W in
// float or bfloat16 storage, fp32 FMA accumulation.
//
// Register tile: 4 rows of W x 2 tokens, 8 accumulators of 8 floats (AVX2 + FMA; bf16 widened by a zero
// extension and a 16-bit shift, which is exact); each row block is read from memory once and stays in L1
// while further token pairs pass over it, so for the few tokens of decoding W streams exactly once. Rows
// are split over ctx.parallel_for. A portable loop does the same without intrinsics. For fp32 weights and
// 16 or more tokens the product is compute-bound and goes to Eigen's GEMM instead.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "../../core/context.hpp"
#include "../../core/dtype.hpp"
#include "../../tensor/eigen.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail::gemv {

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bfloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
#endif

// out[r * NT + k] = dot(w row r, x row k) for R rows (stride ws) and NT tokens (stride xs) of length D.
template <int R, int NT, class W>
inline void block(const W* w, int64_t ws, const float* x, int64_t xs, int64_t D, float* out) {
  int64_t d = 0;
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[R][NT];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NT; ++k) acc[r][k] = _mm256_setzero_ps();
  for (; d + 8 <= D; d += 8) {
    __m256 xv[NT];
    for (int k = 0; k < NT; ++k) xv[k] = _mm256_loadu_ps(x + k * xs + d);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = load8(w + r * ws + d);
      for (int k = 0; k < NT; ++k) acc[r][k] = _mm256_fmadd_ps(wv, xv[k], acc[r][k]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NT; ++k) out[r * NT + k] = sum8(acc[r][k]);
#else
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NT; ++k) out[r * NT + k] = 0.0f;
#endif
  for (; d < D; ++d)
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < NT; ++k) out[r * NT + k] += to_float(w[r * ws + d]) * x[k * xs + d];
}

}  // namespace bimamba::detail::gemv

namespace bimamba::detail {

template <class W>
void dense_gemv_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,  // (T, D)
                     TensorView<const W, 2, Host> weight,                      // (V, D)
                     TensorView<float, 2, Host> y) {                           // (T, V)
  const int64_t T = x.size(0), D = x.size(1), V = weight.size(0);
  if constexpr (std::is_same_v<W, float>) {
    if (T >= 16 && D > 0) {
      const auto X = as_matrix(x);
      const auto Wm = as_matrix(weight);
      auto Y = as_matrix(y);
      ctx.parallel_for(V, [&](int64_t begin, int64_t end) {
        Y.middleCols(begin, end - begin).noalias() = X * Wm.middleRows(begin, end - begin).transpose();
      }, 64);
      return;
    }
  }
  const int64_t xs = T > 1 ? x.stride(0) : D, ws = V > 1 ? weight.stride(0) : D;
  ctx.parallel_for((V + 3) / 4, [&](int64_t begin, int64_t end) {
    float out[8];
    for (int64_t q = begin; q < end; ++q) {
      const int64_t v0 = 4 * q, rows = std::min<int64_t>(4, V - v0);
      const W* w = weight.data() + v0 * ws;
      for (int64_t t = 0; t < T; t += 2) {
        const float* xt = x.data() + t * xs;
        const int nt = T - t >= 2 ? 2 : 1;
        if (rows == 4) {
          if (nt == 2) gemv::block<4, 2>(w, ws, xt, xs, D, out);
          else gemv::block<4, 1>(w, ws, xt, xs, D, out);
          for (int r = 0; r < 4; ++r)
            for (int k = 0; k < nt; ++k) y(t + k, v0 + r) = out[r * nt + k];
        } else {
          for (int64_t r = 0; r < rows; ++r) {
            if (nt == 2) gemv::block<1, 2>(w + r * ws, ws, xt, xs, D, out);
            else gemv::block<1, 1>(w + r * ws, ws, xt, xs, D, out);
            for (int k = 0; k < nt; ++k) y(t + k, v0 + r) = out[k];
          }
        }
      }
    }
  }, 16);
}

}  // namespace bimamba::detail
