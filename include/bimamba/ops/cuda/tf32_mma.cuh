// Warp-level products of fp32 tiles on TF32 tensor cores, for kernels that keep their operand tiles in shared
// memory (the SSD scan's chunk kernel), in one of two precisions:
//   kSplit = true ("3xTF32"): a = a_hi + a_lo, b = b_hi + b_lo with every part in TF32 (10 mantissa bits, round
//     to nearest); acc += a_lo b_hi + a_hi b_lo + a_hi b_hi (fp32 accumulation). The dropped a_lo b_lo and the
//     parts' rounding leave ~2^-22 relative per product: fp32-level results (the fp32 tolerances of the tests
//     against the host's double references), for GemmPrecision::Fp32.
//   kSplit = false: a and b rounded to TF32, one instruction per product (~2^-11 relative per operand), as
//     cuBLAS's TF32 products, for GemmPrecision::Tf32 and Bf16 (training). A third of the tensor-core and
//     fragment work of the split form: the SSD chunk kernel is bound by issue slots, not by bytes.
// wmma (nvcuda::wmma, m16n16k8 TF32 fragments, sm_80+): the fragment layout is opaque, so the only element-wise
// work here is the split, which is the same for every element. Contracts of wmma: the tile pointers 32-byte
// aligned, the pitch (ldm) a multiple of 4 floats; the caller's tile layout makes them so.
#pragma once

#include <mma.h>

#include <type_traits>

namespace bimamba::detail::gpu {

namespace wmma = nvcuda::wmma;
using Tf32FragmentA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
template <class Layout>
using Tf32FragmentB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, Layout>;
using Tf32Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// v = hi + lo with hi and lo in TF32; round_tf32: v rounded to TF32.
template <class Fragment>
__device__ inline void split_tf32(const Fragment& v, Fragment& hi, Fragment& lo) {
#pragma unroll
  for (int e = 0; e < v.num_elements; ++e) {
    hi.x[e] = wmma::__float_to_tf32(v.x[e]);
    lo.x[e] = wmma::__float_to_tf32(v.x[e] - hi.x[e]);
  }
}
template <class Fragment>
__device__ inline void round_tf32(Fragment& v) {
#pragma unroll
  for (int e = 0; e < v.num_elements; ++e) v.x[e] = wmma::__float_to_tf32(v.x[e]);
}

// An operand as a kernel stages it for tf32_mma<kSplit, ..., kRounded = !kSplit>: rounded to TF32 once here for one
// pass, kept whole for the split.
template <bool kSplit>
__device__ inline float tf32_operand(float v) {
  if constexpr (kSplit) return v;
  else return wmma::__float_to_tf32(v);
}

// acc[t] += A B_t for t < kTiles, over k_steps steps of 8 along k (one warp, all lanes):
//   A    16 rows of a row-major tile at a (pitch lda floats), columns k along the row;
//   B_t  the 16-column block t of a tile at b + 16 t (row-major: rows k, pitch ldb) or at b + 16 t ldb (col-major:
//        columns k, pitch ldb); the step along k is 8 rows (row-major) or 8 columns (col-major);
//   kRounded (one pass only): the tiles hold TF32 values already (rounded once when staged), so the fragments are
//        not rounded again at every load.
template <bool kSplit, int kTiles, class Layout, bool kRounded = false>
__device__ inline void tf32_mma(const float* a, int lda, const float* b, int ldb, int k_steps,
                                Tf32Accumulator (&acc)[kTiles]) {
  constexpr bool kRowMajorB = std::is_same<Layout, wmma::row_major>::value;
  const int b_tile = kRowMajorB ? 16 : 16 * ldb, b_step = kRowMajorB ? 8 * ldb : 8;
  for (int k = 0; k < k_steps; ++k) {
    Tf32FragmentA av, ahi, alo;
    wmma::load_matrix_sync(av, a + 8 * k, unsigned(lda));
    if constexpr (kSplit) split_tf32(av, ahi, alo);
    else if constexpr (!kRounded) round_tf32(av);
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      Tf32FragmentB<Layout> bv, bhi, blo;
      wmma::load_matrix_sync(bv, b + t * b_tile + k * b_step, unsigned(ldb));
      if constexpr (kSplit) {
        split_tf32(bv, bhi, blo);
        wmma::mma_sync(acc[t], alo, bhi, acc[t]);
        wmma::mma_sync(acc[t], ahi, blo, acc[t]);
        wmma::mma_sync(acc[t], ahi, bhi, acc[t]);
      } else {
        if constexpr (!kRounded) round_tf32(bv);
        wmma::mma_sync(acc[t], av, bv, acc[t]);
      }
    }
  }
}

}  // namespace bimamba::detail::gpu
