// The integer tensor-core arithmetic shared by the Cuda FBI-Linear kernels (binary_linear.cuh, the general
// small-batch kernel, and binary_gemv.cuh, the decode kernel). Both compute, per token t and output row i,
//   sum_j S_ij q_j = 2 R_i - Q,   R_i = sum_{j: bit ij = 1} q_j,   Q = sum_j q_j
// for activations quantized to q_j = round(a_j 2^22 / m), |q_j| <= 2^22, split into three signed 8-bit planes
//   q_j = 65536 h_j + 256 u_j + l_j        (l, u in [-128, 127], |h| <= 65)
// with mma.m16n8k32 (A = the sign bits as u8 0/1 of 16 rows, B = 8 plane rows as s8, int32 accumulation:
// exact). Sign words are decoded in registers with one shift and one AND per 4 bits: (w >> j) & 0x01010101
// gives the bits j, j + 8, j + 16, j + 24 of a word as 4 bytes, so within each 32 columns the k order of an
// mma is permuted; the planes in shared memory are laid out in the same permuted order (PlaneLayout).
//
// Work unit: one warp, one 16-row tile, 512 columns ("an iteration"): lane (g, tig) holds 16 bytes (4 words,
// 128 columns) of rows g and g + 8, the 4 lanes of a row cover 512 contiguous columns; 16 mma k-steps.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace bimamba::detail::gpu {

inline constexpr int kBlIterCols = 512;  // columns of one warp iteration (4 lanes x 128)

// The packed signs of a BitTensor (rows, wpr words), and whether 16-byte loads are allowed
// (wpr % 4 == 0 and words 16-byte aligned).
struct SignRows {
  const uint32_t* words;
  int64_t rows, wpr;
  bool vector_loads;
};

// Four sign words of `row` starting at word w (zeros past the row or the matrix).
__device__ inline uint4 load_sign_words(const SignRows& s, int64_t row, int64_t w) {
  if (row >= s.rows) return make_uint4(0, 0, 0, 0);
  const uint32_t* p = s.words + row * s.wpr + w;
  if (s.vector_loads) return w < s.wpr ? __ldg(reinterpret_cast<const uint4*>(p)) : make_uint4(0, 0, 0, 0);
  uint32_t v[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) v[k] = w + k < s.wpr ? __ldg(p + k) : 0u;
  return make_uint4(v[0], v[1], v[2], v[3]);
}

__device__ inline uint32_t word_of(const uint4& u, int k) { return k == 0 ? u.x : k == 1 ? u.y : k == 2 ? u.z : u.w; }

// Shared-memory layout of quantized planes: plane row `row` (an mma B column), column c (of `iters` * 512).
// Within 32 columns the bytes are ordered (c % 8) * 4 + (c % 32) / 8, so columns {c, c+8, c+16, c+24} are one
// 32-bit word; every 4 words (a lane's 128 columns) take 160 bytes and each row is offset by 8 bytes mod 128,
// so the 16 lanes of a half-warp read 16 distinct 8-byte bank pairs.
struct PlaneLayout {
  int row_bytes;
  __host__ __device__ explicit PlaneLayout(int iters) : row_bytes(((iters * 4 * 160 + 127) / 128) * 128 + 8) {}
  __host__ __device__ int offset(int row, int c) const {  // unsigned: shifts, no sign fix-ups
    const unsigned u = unsigned(c), quad = u / 128, word = (u / 32) % 4;
    return row * row_bytes + int(quad * 160 + word * 32 + (u % 8) * 4 + (u % 32) / 8);
  }
  // The fragments of lane group tig in iteration `it` (columns it * 512 + tig * 128 + k * 32 + ja, ja even
  // < 8): offset(row, that column) = lane_base(row, it, tig) + k * 32 + ja * 4, a constant per mma k-step.
  __host__ __device__ int lane_base(int row, int it, int tig) const { return row * row_bytes + (it * 4 + tig) * 160; }
  __host__ __device__ int bytes(int plane_rows) const { return plane_rows * row_bytes; }
};

// The three planes of q (|q| <= 2^22) as bytes: q = 65536 h + 256 u + l.
struct PlaneBytes {
  uint32_t l, u, h;
};
__device__ inline PlaneBytes split_planes(int q) {
  const int l = int(static_cast<signed char>(q & 0xff)), q1 = (q - l) >> 8;
  const int u = int(static_cast<signed char>(q1 & 0xff)), h = (q1 - u) >> 8;
  return {uint32_t(l & 0xff), uint32_t(u & 0xff), uint32_t(h & 0xff)};
}

// Quantizes a'_j to q = round(a'_j qscale) (qscale = 2^22 / max |a'|, so |q| <= 2^22), ORs its three plane bytes
// into byte e of the plane words l, u, h and returns q.
__device__ inline int quantize_to_planes(float av, float qscale, int e, uint32_t& l, uint32_t& u, uint32_t& h) {
  const int q = __float2int_rn(av * qscale);
  const PlaneBytes p = split_planes(q);
  l |= p.l << (8 * e);
  u |= p.u << (8 * e);
  h |= p.h << (8 * e);
  return q;
}

__device__ inline void mma_u8s8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint2 b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b.x), "r"(b.y));
#else
  // Without sm_80 device code (the CPU emulator, tools/cuda_emu; the launchers refuse devices before sm_80): the
  // same product from the warp's fragments, gathered by shuffles. The layout of mma.m16n8k32 with 8-bit types
  // (PTX ISA), lane = 4 g + t: A rows g (a0, a2) and g + 8 (a1, a3), byte i of a0 / a1 at k = 4 t + i and of
  // a2 / a3 at k = 16 + 4 t + i; B column g, byte i of b.x at k = 4 t + i and of b.y at k = 16 + 4 t + i; C rows
  // g (c0, c1) and g + 8 (c2, c3) at columns 2 t and 2 t + 1. The sum is exact, as on the tensor core.
  const int lane = int(threadIdx.x) & 31, g = lane >> 2, t = lane & 3;
  // Each 64-bit word: k = 4 q + i in byte i, k = 16 + 4 q + i in byte 4 + i (one shuffle for both halves).
  const auto pair = [](uint32_t lo, uint32_t hi) { return (static_cast<unsigned long long>(hi) << 32) | lo; };
  const unsigned long long row_g = pair(a0, a2), row_g8 = pair(a1, a3), col = pair(b.x, b.y);
  const auto u8 = [](unsigned long long w, int i) { return int((w >> (8 * i)) & 0xFFu); };
  const auto s8 = [](unsigned long long w, int i) { return int(static_cast<signed char>((w >> (8 * i)) & 0xFFu)); };
  for (int q = 0; q < 4; ++q) {  // the lanes 4 r + q hold k = 4 q .. 4 q + 3 and 16 + 4 q .. 16 + 4 q + 3
    const unsigned long long ag = __shfl_sync(0xffffffffu, row_g, 4 * g + q);
    const unsigned long long ag8 = __shfl_sync(0xffffffffu, row_g8, 4 * g + q);
    const unsigned long long b0 = __shfl_sync(0xffffffffu, col, 8 * t + q);      // column 2 t
    const unsigned long long b1 = __shfl_sync(0xffffffffu, col, 8 * t + 4 + q);  // column 2 t + 1
    for (int i = 0; i < 8; ++i) {
      c[0] += u8(ag, i) * s8(b0, i);
      c[1] += u8(ag, i) * s8(b1, i);
      c[2] += u8(ag8, i) * s8(b0, i);
      c[3] += u8(ag8, i) * s8(b1, i);
    }
  }
#endif
}

// One iteration: the 16 rows' words u (row g) and v (row g + 8) of a lane against the planes. `b_lane[nt]`
// points at the lane's B fragments of tile nt in this iteration (PlaneLayout::lane_base of its plane row):
// k-step s reads the 8 bytes at k * 32 + ja * 4, constant offsets once unrolled.
template <int NT>
__device__ inline void mma_iteration(int (&acc)[NT][4], const uint4& u, const uint4& v,
                                     const unsigned char* const (&b_lane)[NT]) {
#pragma unroll
  for (int s = 0; s < 16; ++s) {
    const int k = s / 4, ja = 2 * (s % 4);
    const uint32_t wu = word_of(u, k), wv = word_of(v, k);
    const uint32_t a0 = (wu >> ja) & 0x01010101u, a2 = (wu >> (ja + 1)) & 0x01010101u;
    const uint32_t a1 = (wv >> ja) & 0x01010101u, a3 = (wv >> (ja + 1)) & 0x01010101u;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      mma_u8s8(acc[nt], a0, a1, a2, a3, *reinterpret_cast<const uint2*>(b_lane[nt] + k * 32 + ja * 4));
  }
}

}  // namespace bimamba::detail::gpu
