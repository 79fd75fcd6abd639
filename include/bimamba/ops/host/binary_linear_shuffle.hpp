// Host shuffle (vpshufb) lookup-table kernel for the packed FBI-Linear on TiledSigns: the decode-speed path.
//
//   y[t, i] = sum_j s[i, j] a[t, j] + b[t],   a = alpha ⊙ x,  b = beta · x (double, rounded to float)
//
// Quantization (the only approximation): a is cut into blocks of 32 columns (one sign word); block w gets
// the scale d_w = max_{j in w} |a_j| / 1023 and integers q_j = round(a_j / d_w) in [-1023, 1023] (q_j = 0
// beyond in, so padding bits never leak). Then
//   y[t, i] = sum_w d_w * sum_{j in w} s[i, j] q_j + b[t]
// and |y - exact| <= sum_j d_{w(j)} / 2 + fp32 rounding of the block sums; for random activations the
// relative error is about 3e-4 * (max / rms of a block) (docs/kernels.md has the measured numbers).
//
// Tables: for each group k of 4 columns and pattern v in 0..15, L[k][v] = sum_{b<4} (bit b of v ? 1 : -1)
// q_{4k+b}, an int16 in [-4092, 4092], stored as two 16-byte planes (low bytes, high bytes) so that vpshufb
// looks up 32 rows at once. Per byte position of a tile (32 rows x 8 columns = 2 groups): 2 x (2 vpshufb +
// 2 vpunpck + 2 vpaddw); the 8 groups of a block sum exactly in int16 (|sum| <= 8 * 4092 < 32768), then
// vpmaddwd splits even / odd words into int32, which are converted and multiply-added with d_w into 4 fp32
// accumulators (rows 0-7, 8-15, 16-23, 24-31 thanks to TiledSigns::slot).
//
// Paths, chosen at compile time: AVX-512BW (two tiles per 512-bit register, odd tile by AVX2), AVX2, and a
// portable scalar kernel that computes the same integers and the same fp32 operations in the same order,
// so all paths give bit-identical y (tested).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"
#include "binary_linear_tiled.hpp"

namespace bimamba::detail::shuffle {

inline constexpr int kQuantMax = 1023;            // 8 groups * 4 columns * 1023 < 32768: int16 block sums are exact
// Weight streaming, tuned on a 16-core Xeon (docs/kernels.md). AVX-512 build: prefetch 0 / 1 / 2 / 4 KiB and
// 1 / 4 / 8 streams were within noise on one thread, 8 streams 4-27% faster with 16 threads. AVX2 build, same-run
// A/B: 1 stream with 2 KiB was 20% faster than 8 streams with 1 KiB on 1 thread and 15% on 16 threads.
#if defined(__AVX512F__) && defined(__AVX512BW__)
inline constexpr int64_t kPrefetchBytes = 1024;  // software prefetch distance in each weight stream
inline constexpr int64_t kStreams = 8;           // tile ranges visited round-robin per thread
#else
inline constexpr int64_t kPrefetchBytes = 2048;
inline constexpr int64_t kStreams = 1;
#endif

// Per-token quantized tables: words blocks of 32 columns; groups = 8 * words.
struct TokenTables {
  const uint8_t* planes;  // (groups, 2, 16): low bytes then high bytes of L[k][0..16)
  const float* scale;     // (words) d_w
};

// The scale d of one 32-column block and the factor inv = 1 / d used to quantize it (0 for an all-zero
// block). A non-finite activation makes d NaN (and inv 0), so every output of the token is NaN.
inline void block_scale(const float* aw, float* scale, float* inv) {
  float m = 0;
  bool finite = true;
  for (int j = 0; j < 32; ++j) {
    const float v = std::abs(aw[j]);
    finite = finite && v <= std::numeric_limits<float>::max();  // false for Inf and NaN
    m = std::max(m, v);
  }
  const bool usable = finite && m > 0;
  *scale = usable ? m / float(kQuantMax) : (finite ? 0.0f : std::numeric_limits<float>::quiet_NaN());
  *inv = usable ? float(kQuantMax) / m : 0.0f;
}

// The 8 group tables of one block (planes: (8, 2, 16) bytes): portable version.
inline void block_tables_scalar(const float* aw, float inv, uint8_t* planes) {
  for (int g = 0; g < 8; ++g) {
    int q[4];
    for (int b = 0; b < 4; ++b) q[b] = std::clamp(int(std::nearbyint(aw[4 * g + b] * inv)), -kQuantMax, kQuantMax);
    int16_t L[16];
    L[0] = int16_t(-(q[0] + q[1] + q[2] + q[3]));
    for (int b = 0; b < 4; ++b)
      for (int v = 0; v < (1 << b); ++v) L[v + (1 << b)] = int16_t(L[v] + 2 * q[b]);
    uint8_t* plane = planes + g * 32;
    for (int v = 0; v < 16; ++v) {
      plane[v] = uint8_t(uint16_t(L[v]) & 0xffu);
      plane[16 + v] = uint8_t(uint16_t(L[v]) >> 8);
    }
  }
}

#if defined(__AVX2__)
// The same with AVX2: L[v] = sum_b sign_b(v) q_b as 16 int16 lanes (vpsignw), bytes split by one in-lane
// shuffle and one cross-lane permute into [low bytes 0..15 | high bytes 0..15]. Same integers as the scalar
// version (cvtps rounds to nearest even, as nearbyint does in the default rounding mode).
inline void block_tables_avx2(const float* aw, float inv, uint8_t* planes) {
  alignas(32) int16_t q[32];
  const __m256 scale = _mm256_set1_ps(inv);
  const __m256i lo = _mm256_set1_epi32(-kQuantMax), hi = _mm256_set1_epi32(kQuantMax);
  for (int k = 0; k < 2; ++k) {
    auto quantize = [&](int c) {
      const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(aw + c), scale));
      return _mm256_max_epi32(lo, _mm256_min_epi32(hi, v));
    };
    const __m256i packed = _mm256_packs_epi32(quantize(16 * k), quantize(16 * k + 8));
    _mm256_store_si256(reinterpret_cast<__m256i*>(q + 16 * k), _mm256_permute4x64_epi64(packed, 0xd8));
  }
  const __m256i sign0 = _mm256_setr_epi16(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1);
  const __m256i sign1 = _mm256_setr_epi16(-1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1);
  const __m256i sign2 = _mm256_setr_epi16(-1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1);
  const __m256i sign3 = _mm256_setr_epi16(-1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,  //
                                         0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (int g = 0; g < 8; ++g) {
    const int16_t* qg = q + 4 * g;
    const __m256i L = _mm256_add_epi16(
        _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(qg[0]), sign0), _mm256_sign_epi16(_mm256_set1_epi16(qg[1]), sign1)),
        _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(qg[2]), sign2), _mm256_sign_epi16(_mm256_set1_epi16(qg[3]), sign3)));
    const __m256i bytes = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(L, split), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(planes + g * 32), bytes);
  }
}
#endif

// Quantizes a (32 * words values, zero padded) and builds the tables of one token: planes (8 * words, 2,
// 16) bytes, scale (words).
inline void build_tables(const float* a, int64_t words, uint8_t* planes, float* scale, bool force_scalar = false) {
  for (int64_t w = 0; w < words; ++w) {
    float inv;
    block_scale(a + 32 * w, scale + w, &inv);
#if defined(__AVX2__)
    if (!force_scalar) {
      block_tables_avx2(a + 32 * w, inv, planes + 8 * w * 32);
      continue;
    }
#endif
    (void)force_scalar;
    block_tables_scalar(a + 32 * w, inv, planes + 8 * w * 32);
  }
}

// Everything one token needs before its tiles: a = alpha ⊙ x (cols = 32 * words values, zero padded past in),
// its tables (planes, scale as build_tables) and the offset b = beta · x, summed in double and returned as float.
inline float prepare_token(const float* x, int64_t in, TensorView<const float, 1, Host> alpha,
                           TensorView<const float, 1, Host> beta, int64_t words, float* a, uint8_t* planes,
                           float* scale) {
  double bsum = 0;
  for (int64_t j = 0; j < in; ++j) {
    a[j] = alpha(j) * x[j];
    bsum += double(beta(j)) * double(x[j]);
  }
  std::fill(a + in, a + 32 * words, 0.0f);
  build_tables(a, words, planes, scale);
  return float(bsum);
}

// acc[0..32) = sum_w d_w * (block w of the 32 rows of `tile` against the tables): portable version.
inline void tile_scalar(const uint8_t* tile, int64_t words, const TokenTables& tt, float* acc) {
  for (int i = 0; i < TiledSigns::kTileRows; ++i) {
    const int s = TiledSigns::slot(i);
    float f = 0;
    for (int64_t w = 0; w < words; ++w) {
      int32_t block = 0;
      for (int p = 0; p < 4; ++p) {
        const uint8_t byte = tile[(4 * w + p) * TiledSigns::kTileRows + s];
        for (int h = 0; h < 2; ++h) {
          const uint8_t* plane = tt.planes + (8 * w + 2 * p + h) * 32;
          const int v = h ? byte >> 4 : byte & 15;
          block += int16_t(uint16_t(plane[v]) | uint16_t(plane[16 + v] << 8));
        }
      }
      f = std::fma(float(block), tt.scale[w], f);
    }
    acc[i] = f;
  }
}

#if defined(__AVX2__)
// A 16-byte table plane in both 128-bit lanes.
inline __m256i broadcast_plane(const uint8_t* plane) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane)));
}

// The same as tile_scalar for one tile with AVX2; acc receives rows 0..31 in order.
inline void tile_avx2(const uint8_t* tile, int64_t words, const TokenTables& tt, float* acc) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  __m256 f0 = _mm256_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
  for (int64_t w = 0; w < words; ++w) {
    __m256i sa = _mm256_setzero_si256(), sb = sa;
    const uint8_t* plane = tt.planes + 8 * w * 32;
    const uint8_t* bytes = tile + 4 * w * 32;
    // The tiles are contiguous: fetch kPrefetchBytes ahead (into the next tile at the end of this one), so
    // that DRAM streams while the shuffles run.
    _mm_prefetch(reinterpret_cast<const char*>(bytes + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(bytes + kPrefetchBytes + 64), _MM_HINT_T0);
    for (int p = 0; p < 4; ++p, plane += 64, bytes += 32) {
      // Written as a sequence of short-lived temporaries: the 16 ymm registers must hold everything.
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes));
      const __m256i lo = _mm256_and_si256(v, nibble);
      __m256i l = _mm256_shuffle_epi8(broadcast_plane(plane), lo);
      __m256i h = _mm256_shuffle_epi8(broadcast_plane(plane + 16), lo);
      sa = _mm256_add_epi16(sa, _mm256_unpacklo_epi8(l, h));
      sb = _mm256_add_epi16(sb, _mm256_unpackhi_epi8(l, h));
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
      l = _mm256_shuffle_epi8(broadcast_plane(plane + 32), hi);
      h = _mm256_shuffle_epi8(broadcast_plane(plane + 48), hi);
      sa = _mm256_add_epi16(sa, _mm256_unpacklo_epi8(l, h));
      sb = _mm256_add_epi16(sb, _mm256_unpackhi_epi8(l, h));
    }
    const __m256 d = _mm256_broadcast_ss(tt.scale + w);
    const __m256i even = _mm256_set1_epi32(1), odd = _mm256_set1_epi32(1 << 16);
    f0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sa, even)), d, f0);
    f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sa, odd)), d, f1);
    f2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sb, even)), d, f2);
    f3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sb, odd)), d, f3);
  }
  _mm256_storeu_ps(acc, f0);
  _mm256_storeu_ps(acc + 8, f1);
  _mm256_storeu_ps(acc + 16, f2);
  _mm256_storeu_ps(acc + 24, f3);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
// Two tiles at once (512-bit registers: lanes 0-1 tile A, lanes 2-3 tile B); acc_a / acc_b get rows 0..31.
inline void tile_pair_avx512(const uint8_t* tile_a, const uint8_t* tile_b, int64_t words, const TokenTables& tt,
                             float* acc_a, float* acc_b) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i even = _mm512_set1_epi32(1), odd = _mm512_set1_epi32(1 << 16);
  __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
  for (int64_t w = 0; w < words; ++w) {
    __m512i sa = _mm512_setzero_si512(), sb = sa;
    _mm_prefetch(reinterpret_cast<const char*>(tile_a + 4 * w * 32 + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(tile_a + 4 * w * 32 + kPrefetchBytes + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(tile_b + 4 * w * 32 + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(tile_b + 4 * w * 32 + kPrefetchBytes + 64), _MM_HINT_T0);
    for (int p = 0; p < 4; ++p) {
      const int64_t offset = (4 * w + p) * 32;
      const __m512i v = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(tile_a + offset))),
          _mm256_load_si256(reinterpret_cast<const __m256i*>(tile_b + offset)), 1);
      const __m512i lo = _mm512_and_si512(v, nibble);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
      const uint8_t* plane = tt.planes + (8 * w + 2 * p) * 32;
      const __m512i tl0 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane)));
      const __m512i th0 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane + 16)));
      const __m512i tl1 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane + 32)));
      const __m512i th1 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane + 48)));
      const __m512i l0 = _mm512_shuffle_epi8(tl0, lo), h0 = _mm512_shuffle_epi8(th0, lo);
      const __m512i l1 = _mm512_shuffle_epi8(tl1, hi), h1 = _mm512_shuffle_epi8(th1, hi);
      sa = _mm512_add_epi16(sa, _mm512_add_epi16(_mm512_unpacklo_epi8(l0, h0), _mm512_unpacklo_epi8(l1, h1)));
      sb = _mm512_add_epi16(sb, _mm512_add_epi16(_mm512_unpackhi_epi8(l0, h0), _mm512_unpackhi_epi8(l1, h1)));
    }
    const __m512 d = _mm512_set1_ps(tt.scale[w]);
    f0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(sa, even)), d, f0);
    f1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(sa, odd)), d, f1);
    f2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(sb, even)), d, f2);
    f3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(sb, odd)), d, f3);
  }
  const __m512 f[4] = {f0, f1, f2, f3};
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(acc_a + 8 * k, _mm512_castps512_ps256(f[k]));
    _mm256_storeu_ps(acc_b + 8 * k, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f[k]), 1)));
  }
}
#endif

// The kernel this build uses for one tile.
inline void tile_best(const uint8_t* tile, int64_t words, const TokenTables& tt, float* acc) {
#if defined(__AVX2__)
  tile_avx2(tile, words, tt, acc);
#else
  tile_scalar(tile, words, tt, acc);
#endif
}

}  // namespace bimamba::detail::shuffle

namespace bimamba::detail {

inline void binary_linear_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,  // (T, in)
                               const TiledSigns& signs,                                  // (out, in)
                               TensorView<const float, 1, Host> alpha,                   // (in)
                               TensorView<const float, 1, Host> beta,                    // (in)
                               TensorView<float, 2, Host> y) {                           // (T, out)
  constexpr int R = TiledSigns::kTileRows;
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows(), words = signs.words_per_row();
  const int64_t cols = 32 * words, groups = 8 * words, tiles = signs.tiles();
  Workspace<Host>& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  float* a = ws.take<float>(size_t(T * cols));            // (T, cols) alpha ⊙ x, zero padded
  uint8_t* planes = ws.take<uint8_t>(size_t(T * groups * 32));  // (T, groups, 2, 16) table byte planes
  float* scale = ws.take<float>(size_t(T * words));       // (T, words) block scales
  float* b = ws.take<float>(size_t(T));                   // (T) beta · x
  auto prepare = [&](int64_t t) {  // a, b and the tables of token t
    b[t] = shuffle::prepare_token(x.data() + t * x.stride(0), in, alpha, beta, words, a + t * cols,
                                  planes + t * groups * 32, scale + t * words);
  };
  // acc (32 rows of one tile) -> y (T, out), dropping the rows of a partial last tile.
  auto store = [&](int64_t tile, int64_t t, const float* acc) {
    const int64_t rows = std::min<int64_t>(R, out - tile * R);
    float* yt = y.data() + t * y.stride(0) + tile * R;
    for (int64_t i = 0; i < rows; ++i) yt[i] = acc[i] + b[t];
  };
  // Tiles [r, min(r + kTilesPerStep, r1)) for every token (their bytes stay in L1 across tokens).
#if defined(__AVX512F__) && defined(__AVX512BW__)
  constexpr int64_t kTilesPerStep = 2;  // one 512-bit register holds two tiles
#else
  constexpr int64_t kTilesPerStep = 1;
#endif
  auto step = [&](int64_t r, int64_t r1, float* acc) {
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if (r + 1 < r1) {
      for (int64_t t = 0; t < T; ++t) {
        const shuffle::TokenTables tt{planes + t * groups * 32, scale + t * words};
        shuffle::tile_pair_avx512(signs.tile(r), signs.tile(r + 1), words, tt, acc, acc + R);
        store(r, t, acc);
        store(r + 1, t, acc + R);
      }
      return;
    }
#endif
    (void)r1;
    for (int64_t t = 0; t < T; ++t) {
      const shuffle::TokenTables tt{planes + t * groups * 32, scale + t * words};
      shuffle::tile_best(signs.tile(r), words, tt, acc);
      store(r, t, acc);
    }
  };
  // Tiles [r0, r1), cut into kStreams parts visited round-robin: several sequential streams keep more DRAM
  // reads in flight than one (bench BM_dram_read/streams:8 vs streams:1).
  auto compute = [&](int64_t r0, int64_t r1) {
    alignas(64) float acc[2 * R];
    const int64_t steps = (r1 - r0 + kTilesPerStep - 1) / kTilesPerStep;
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(shuffle::kStreams, steps));
    const int64_t per_part = (steps + parts - 1) / parts;
    for (int64_t i = 0; i < per_part; ++i)
      for (int64_t k = 0; k < parts; ++k) {
        const int64_t s = k * per_part + i;
        if (s < std::min(steps, (k + 1) * per_part)) step(r0 + s * kTilesPerStep, r1, acc);
      }
  };
  // Both parallel regions use the same number of workers, one chunk each: OpenMP runtimes (libgomp,
  // measured) lose hundreds of microseconds when consecutive regions alternate team sizes.
  const int64_t workers = std::min<int64_t>(ctx.threads(), tiles);
  if (T <= 2 || workers <= 1) {
    for (int64_t t = 0; t < T; ++t) prepare(t);
  } else {
    ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        for (int64_t t = T * c / workers; t < T * (c + 1) / workers; ++t) prepare(t);
    });
  }
  ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) compute(tiles * c / workers, tiles * (c + 1) / workers);
  });
}

}  // namespace bimamba::detail
