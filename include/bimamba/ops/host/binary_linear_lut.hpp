// Host fp32 lookup-table kernels for the packed FBI-Linear, on the standard bit layout (tensor/bit_tensor.hpp):
//
//   y[t, i] = sum_j s[i, j] a[t, j] + b[t],   a = alpha ⊙ x (zero beyond in),  b = beta · x
//
// Group the columns in blocks of g; for a group k and a g-bit pattern v let
//   L_t[k][v] = sum_{q < g} (bit q of v ? +1 : -1) * a[t, g k + q]
// (the 2^g signed sums, built once per token with one add each: L[v | 2^q] = L[v] + 2 a_q). Then
//   y[t, i] = sum_k L_t[k][bits of row i in group k] + b[t]:  one table load + add per g weights.
// Padding bits (always 0 = -1) index columns where a is zero, so they add -0: nothing leaks, whatever
// their value.
//
// Two variants:
//   lut8_row:   one token, g = 8 (a table of 256 floats per byte of the row), scalar loads, 8 accumulators.
//               Tables: 1 KiB per 8 inputs (in = 2560: 320 KiB, fits the L2 cache).
//   lut4x8_row: a block of up to 8 tokens, g = 4, tables laid out [group][pattern][token] so one 8-lane
//               vector add serves 8 tokens (512 B per 4 inputs; in = 2560: 320 KiB).
// Both sum in fp32 (a rounding per table entry build step and per accumulated lookup): the error is below
// (in + 2) u sum_j |x_j| (|alpha_j| + |beta_j|), u = 2^-24, the bound the tests use.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

// The lookups are independent scalar loads; GCC's vectorizer would turn them into gathers, which are several
// times slower than scalar loads on the machines measured (docs/kernels.md).
#if defined(__GNUC__) && !defined(__clang__)
#define BIMAMBA_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define BIMAMBA_NO_VECTORIZE
#endif

namespace bimamba::detail::lut {

inline constexpr int kBlockTokens = 8;  // tokens per lut4x8 table block (one AVX2 vector of floats)

// Tables for one token, g = 8: tab (bytes, 256); a holds 8 * bytes values (zero padded).
inline void build_lut8(const float* a, int64_t bytes, float* tab) {
  for (int64_t p = 0; p < bytes; ++p) {
    const float* ap = a + 8 * p;
    float* t = tab + 256 * p;
    t[0] = -(((ap[0] + ap[1]) + (ap[2] + ap[3])) + ((ap[4] + ap[5]) + (ap[6] + ap[7])));
    for (int q = 0; q < 8; ++q) {
      const float d = 2.0f * ap[q];
      const int half = 1 << q;
      for (int v = 0; v < half; ++v) t[v + half] = t[v] + d;
    }
  }
}

// sum_k tab[k][byte k of the row]: the row as `words` 32-bit words.
BIMAMBA_NO_VECTORIZE inline float lut8_row(const uint32_t* row, int64_t words, const float* tab) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 2 <= words; k += 2) {
    const uint32_t w0 = row[k], w1 = row[k + 1];
    const float* t = tab + 1024 * k;
    acc[0] += t[w0 & 255u];
    acc[1] += t[256 + ((w0 >> 8) & 255u)];
    acc[2] += t[512 + ((w0 >> 16) & 255u)];
    acc[3] += t[768 + (w0 >> 24)];
    acc[4] += t[1024 + (w1 & 255u)];
    acc[5] += t[1280 + ((w1 >> 8) & 255u)];
    acc[6] += t[1536 + ((w1 >> 16) & 255u)];
    acc[7] += t[1792 + (w1 >> 24)];
  }
  if (k < words) {
    const uint32_t w0 = row[k];
    const float* t = tab + 1024 * k;
    acc[0] += t[w0 & 255u];
    acc[1] += t[256 + ((w0 >> 8) & 255u)];
    acc[2] += t[512 + ((w0 >> 16) & 255u)];
    acc[3] += t[768 + (w0 >> 24)];
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Tables for a block of 8 tokens, g = 4: tab (groups, 16, 8). at (4 * groups, 8) holds a transposed
// (column j, token lane), zero for absent tokens and padded columns.
inline void build_lut4x8(const float* at, int64_t groups, float* tab) {
  constexpr int B = kBlockTokens;
  for (int64_t k = 0; k < groups; ++k) {
    const float* a = at + 4 * B * k;
    float* t = tab + 16 * B * k;
    for (int l = 0; l < B; ++l) t[l] = -((a[l] + a[B + l]) + (a[2 * B + l] + a[3 * B + l]));
    for (int q = 0; q < 4; ++q) {
      const int half = 1 << q;
      for (int v = 0; v < half; ++v)
        for (int l = 0; l < B; ++l) t[(v + half) * B + l] = t[v * B + l] + 2.0f * a[q * B + l];
    }
  }
}

// acc[0..8) = sum_k tab[k][nibble k of the row][0..8).
inline void lut4x8_row(const uint32_t* row, int64_t words, const float* tab, float* acc) {
  constexpr int B = kBlockTokens;
#if defined(__AVX2__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t k = 0; k < words; ++k) {
    const uint32_t w = row[k];
    const float* t = tab + 8 * 16 * B * k;  // 8 groups per word
    s0 = _mm256_add_ps(s0, _mm256_load_ps(t + 0 * 16 * B + B * (w & 15u)));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(t + 1 * 16 * B + B * ((w >> 4) & 15u)));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(t + 2 * 16 * B + B * ((w >> 8) & 15u)));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(t + 3 * 16 * B + B * ((w >> 12) & 15u)));
    s0 = _mm256_add_ps(s0, _mm256_load_ps(t + 4 * 16 * B + B * ((w >> 16) & 15u)));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(t + 5 * 16 * B + B * ((w >> 20) & 15u)));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(t + 6 * 16 * B + B * ((w >> 24) & 15u)));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(t + 7 * 16 * B + B * (w >> 28)));
  }
  _mm256_storeu_ps(acc, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#else
  float s[4][B] = {};
  for (int64_t k = 0; k < words; ++k) {
    const uint32_t w = row[k];
    const float* t = tab + 8 * 16 * B * k;
    for (int n = 0; n < 8; ++n) {
      const float* e = t + n * 16 * B + B * ((w >> (4 * n)) & 15u);
      for (int l = 0; l < B; ++l) s[n & 3][l] += e[l];
    }
  }
  for (int l = 0; l < B; ++l) acc[l] = (s[0][l] + s[1][l]) + (s[2][l] + s[3][l]);
#endif
}

}  // namespace bimamba::detail::lut
