// The SSD scan backward's read-outs of the two chunk states (ops/cuda/ssd_scan_backward.cuh, step 3), one kernel
// per (b, chunk c, head h) on TF32 tensor cores. With S0 = S_in[c] and F = F_c (N x P each, the head's columns of
// the (rows, chunks, N, H, P) states), the chunk's rows C_c, B_c (Qc x N, of the head's group), dyw_i =
// exp(cs_i) dy_i, Xw_j and el_j = exp(cs_last - cs_j):
//   Y0 = C_c S0,  U = B_c F                  (Qc x P)   on chip only
//   s0_i = dyw_i . Y0_i,  E_j = Xw_j . U_j              (Qc each, doubles: the decay path's row terms)
//   v_j  = el_j U_j                                     (v's first term; the mask products add M^T dy)
//   fs   = <F, S0>                                      (double: dl's constant term, before exp(cs_last))
// Until session 20 these were two batched cuBLAS products writing Y0 and U to HBM, the decay kernel's second phase
// reading them back with dyw and Xw, and a kernel of its own reading S0 and F again for <F, S0>: here S0 and F are
// read once (the dominant bytes: 2 x 32 KB a block at the 780M shape) and Y0 never leaves the SM.
//
// Block shape: kSsdReadoutThreads = 256 threads, 8 warps; warps 0 - 3 own Y0's rows 16 w .. 16 w + 15, warps 4 - 7
// U's, each 64 columns of P (four 16 x 16 accumulators) per slab of P; k runs over N in slabs of 32 staged in
// shared memory (C and B rows, S0 and F rows; every load of a round issued before its stores). <F, S0> is summed
// from the staged S0 and F values (each element staged once). Then the accumulators go through shared memory and
// a warp per row takes the row dots and writes v. kSplit: 3xTF32 (fp32-level, GemmPrecision::Fp32), else one TF32
// pass (Tf32 / Bf16, as the cuBLAS products this replaced).
// Contracts: Q <= 64 tokens a chunk; Cm, Bm (rows, L, G, N) of any strides; dyw, xw, v (rows, L, H, P) contiguous;
// cs (rows, H, chunks, Q); s0, e (rows, H, chunks, Q); fs (rows, H, chunks). Grid (chunks, rows x H).
#pragma once

#include <cstdint>

#include "launch.cuh"
#include "ssd_chunks.cuh"
#include "tf32_mma.cuh"

namespace bimamba::detail::gpu {

inline constexpr int kSsdReadoutChunk = 64;    // Q at most (four row tiles a product)
inline constexpr int kSsdReadoutThreads = 256;
inline constexpr int kSsdReadoutK = 32;        // k (of N) per staged slab
inline constexpr int kSsdReadoutCols = 64;     // columns of P per pass
inline constexpr int kSsdReadoutPitchA = kSsdReadoutK + 4;     // (Q, k) slabs of C and B
inline constexpr int kSsdReadoutPitchB = kSsdReadoutCols + 4;  // (k, 64) slabs of S0 and F; the (Q, 64) output tiles
inline constexpr int kSsdReadoutSlabFloats =
    2 * kSsdReadoutChunk * kSsdReadoutPitchA + 2 * kSsdReadoutK * kSsdReadoutPitchB;
inline constexpr int kSsdReadoutOutFloats = 2 * kSsdReadoutChunk * kSsdReadoutPitchB;
// Shared memory: the slabs (later the two output tiles in their place), then s0, E (doubles) and el (floats).
inline constexpr size_t kSsdReadoutSmem =
    size_t(kSsdReadoutSlabFloats > kSsdReadoutOutFloats ? kSsdReadoutSlabFloats : kSsdReadoutOutFloats) *
        sizeof(float) +
    2 * kSsdReadoutChunk * sizeof(double) + kSsdReadoutChunk * sizeof(float);
static_assert(kSsdReadoutChunk == 16 * (kSsdReadoutThreads / 32 / 2), "four warps of 16 rows per product");
static_assert(kSsdReadoutSlabFloats % 32 == 0 && kSsdReadoutOutFloats % 32 == 0, "the tiles 32 B aligned (wmma)");
static_assert(kSsdReadoutSmem <= (48 << 10), "no shared-memory opt-in");

// Pointers of one read-out launch (the backward's scratch and operands of one slab of batch rows).
struct SsdReadoutArgs {
  const float* states;   // (rows, chunks, N, H, P)  S_in[c]
  const float* dstates;  // (rows, chunks, N, H, P)  F_c
  const float* dyw;      // (rows, L, H, P)
  const float* xw;       // (rows, L, H, P)
  const double* cs;      // (rows, H, chunks, Q)
  float* v;              // (rows, L, H, P)          out: el U
  double* s0;            // (rows, H, chunks, Q)     out: s0_i
  double* e;             // (rows, H, chunks, Q)     out: E_j
  double* fs;            // (rows, H, chunks)        out: <F, S0>
};

template <class T, bool kSplit>
__global__ void __launch_bounds__(kSsdReadoutThreads, 2)
    ssd_state_readout_kernel(SsdGeometry g, SsdReadoutArgs a, TensorView<const T, 4, Cuda> Cm,
                             TensorView<const T, 4, Cuda> Bm) {
  constexpr int Qm = kSsdReadoutChunk, K = kSsdReadoutK, PA = kSsdReadoutPitchA, PB = kSsdReadoutPitchB;
  constexpr int W = kSsdReadoutCols, kWarps = kSsdReadoutThreads / 32;
  constexpr int kALoads = Qm * K / kSsdReadoutThreads, kBLoads = K * W / kSsdReadoutThreads;
  constexpr int kARowStep = kSsdReadoutThreads / K, kBRowStep = kSsdReadoutThreads / W;
  extern __shared__ __align__(128) double readout_smem[];
  float* ta = reinterpret_cast<float*>(readout_smem);  // (2, Q, PA) slabs of C_c, B_c
  float* tb = ta + 2 * Qm * PA;                         // (2, K, PB) slabs of S0, F
  float* out = ta;                                      // (2, Q, PB) Y0, U after the products
  constexpr int kSlabFloats = kSsdReadoutSlabFloats > kSsdReadoutOutFloats ? kSsdReadoutSlabFloats
                                                                           : kSsdReadoutOutFloats;
  double* s0 = readout_smem + kSlabFloats / 2;  // (Q) s0_i over the slabs of P
  double* ej = s0 + Qm;                         // (Q) E_j
  float* el = reinterpret_cast<float*>(ej + Qm);  // (Q) exp(cs_last - cs_j)
  __shared__ double red[32];

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, half = warp / 4, row0 = 16 * (warp % 4);
  const int64_t c = blockIdx.x, pair = blockIdx.y, b = pair / g.H, h = pair % g.H, grp = h / (g.H / g.G);
  const int64_t c0 = c * g.Q, HP = g.H * g.P, NHP = g.N * HP;
  const int Qc = int(g.tokens_in(c));
  const double* cs = a.cs + (pair * g.chunks + c) * g.Q;
  if (tid < Qm) {
    el[tid] = tid < Qc ? expf(float(cs[Qc - 1] - cs[tid])) : 0.0f;
    s0[tid] = 0.0;
    ej[tid] = 0.0;
  }
  const float* S = a.states + (b * g.chunks + c) * NHP + h * g.P;  // (N, P), rows HP apart
  const float* F = a.dstates + (b * g.chunks + c) * NHP + h * g.P;
  const int a_col = tid % K, a_row = tid / K, b_col = tid % W, b_row = tid / W;
  double fs = 0.0;

  for (int64_t p0 = 0; p0 < g.P; p0 += W) {
    const bool col_in = p0 + b_col < g.P;
    Tf32Accumulator acc[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) wmma::fill_fragment(acc[t], 0.0f);
    for (int64_t n0 = 0; n0 < g.N; n0 += K) {
      float vc[kALoads], vb[kALoads], vs[kBLoads], vf[kBLoads];
      const bool n_in = n0 + a_col < g.N;
      // One pointer and one step per operand (no 64-bit index arithmetic per element).
      const T* cp = Cm.data() + b * Cm.stride(0) + (c0 + a_row) * Cm.stride(1) + grp * Cm.stride(2) +
                    (n0 + a_col) * Cm.stride(3);
      const T* bp = Bm.data() + b * Bm.stride(0) + (c0 + a_row) * Bm.stride(1) + grp * Bm.stride(2) +
                    (n0 + a_col) * Bm.stride(3);
      const int64_t c_step = kARowStep * Cm.stride(1), b_step = kARowStep * Bm.stride(1);
      const int64_t at = (n0 + b_row) * HP + p0 + b_col;
#pragma unroll
      for (int u = 0; u < kALoads; ++u) {
        const bool in = n_in && a_row + u * kARowStep < Qc;
        vc[u] = in ? float(cp[u * c_step]) : 0.0f;
        vb[u] = in ? float(bp[u * b_step]) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBLoads; ++u) {
        const bool in = col_in && n0 + b_row + u * kBRowStep < g.N;
        vs[u] = in ? S[at + u * kBRowStep * HP] : 0.0f;
        vf[u] = in ? F[at + u * kBRowStep * HP] : 0.0f;
      }
      __syncthreads();  // the previous slab's products are done
#pragma unroll
      for (int u = 0; u < kALoads; ++u) {
        const int i = a_row + u * kARowStep;
        ta[i * PA + a_col] = vc[u];
        ta[(Qm + i) * PA + a_col] = vb[u];
      }
#pragma unroll
      for (int u = 0; u < kBLoads; ++u) {
        const int k = b_row + u * kBRowStep;
        tb[k * PB + b_col] = vs[u];
        tb[(K + k) * PB + b_col] = vf[u];
        fs += double(vs[u]) * double(vf[u]);
      }
      __syncthreads();
      const int steps = int((std::min<int64_t>(K, g.N - n0) + 7) / 8);
      if (row0 < Qc)
        tf32_mma<kSplit, 4, wmma::row_major>(ta + (half * Qm + row0) * PA, PA, tb + half * K * PB, PB, steps, acc);
    }
    __syncthreads();  // the slabs are read: the output tiles take their place
    if (row0 < Qc)
#pragma unroll
      for (int t = 0; t < 4; ++t)
        wmma::store_matrix_sync(out + (half * Qm + row0) * PB + 16 * t, acc[t], PB, wmma::mem_row_major);
    __syncthreads();
    // A warp per row i (the same warp for row i in every slab of P: s0[i], ej[i] without races); lanes over p, all
    // loads of the warp's rows first.
    const int width = int(std::min<int64_t>(W, g.P - p0));
    constexpr int kRows = Qm / kWarps;
    float dw[kRows][2], xv[kRows][2];
    const int64_t row_at = (b * g.L + c0 + warp) * HP + h * g.P + p0;  // row i = warp + k kWarps: + k kWarps HP
#pragma unroll
    for (int k = 0; k < kRows; ++k)
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const int p = lane + 32 * q;
        const bool in = warp + k * kWarps < Qc && p < width;
        dw[k][q] = in ? a.dyw[row_at + k * kWarps * HP + p] : 0.0f;
        xv[k][q] = in ? a.xw[row_at + k * kWarps * HP + p] : 0.0f;
      }
#pragma unroll
    for (int k = 0; k < kRows; ++k) {
      const int i = warp + k * kWarps;
      double sc = 0.0, se = 0.0;
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const int p = lane + 32 * q;
        if (i >= Qc || p >= width) continue;
        const float y0 = out[i * PB + p], u = out[(Qm + i) * PB + p];
        sc += double(dw[k][q]) * y0;
        se += double(xv[k][q]) * u;
        a.v[row_at + k * kWarps * HP + p] = el[i] * u;
      }
      sc = warp_sum(sc);
      se = warp_sum(se);
      if (lane == 0) {
        s0[i] += sc;
        ej[i] += se;
      }
    }
    __syncthreads();  // the output tiles are read before the next slab's staging
  }
  fs = block_sum(fs, red);
  if (tid < Qc) {
    a.s0[(pair * g.chunks + c) * g.Q + tid] = s0[tid];
    a.e[(pair * g.chunks + c) * g.Q + tid] = ej[tid];
  }
  if (tid == 0) a.fs[pair * g.chunks + c] = fs;
}

}  // namespace bimamba::detail::gpu
